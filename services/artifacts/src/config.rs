use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use verdict_bus::BusSettings;
use verdict_settings::{Env, SettingError};
use verdict_store::StoreSettings;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Where new objects go in the bucket unless `VERDICT_S3_PREFIX` says otherwise.
pub const DEFAULT_S3_PREFIX: &str = "verdict-artifacts/";
/// Longest key prefix: S3 keys have at most 1024 bytes, and the generated part needs 36.
const MAX_S3_PREFIX_BYTES: usize = 512;

/// Everything the artifacts service is configured with, read once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bus: BusSettings,
    pub store: StoreSettings,
    pub blobs: BlobSettings,
    /// `VERDICT_ARTIFACTS_URL_TTL`, default 15m: lifetime of signed upload and download URLs.
    pub url_ttl: Duration,
    /// `VERDICT_ARTIFACTS_MAX_SIZE`, default 5 GiB: the largest artifact, in bytes.
    pub max_size: u64,
    /// `VERDICT_ARTIFACTS_PROJECT_QUOTA`, default 100 GiB: bytes of artifacts (declared
    /// and stored) one project may hold; 0 means no limit.
    pub project_quota: u64,
    /// `VERDICT_ARTIFACTS_UPLOAD_GRACE`, default 24h: declared artifacts never completed
    /// are removed after this long, and so are stray temporary files.
    pub upload_grace: Duration,
    /// `VERDICT_ARTIFACTS_SWEEP_INTERVAL`, default 10m: how often the sweeper runs.
    pub sweep_interval: Duration,
    /// `VERDICT_STREAM_REPLICAS`, default 1.
    pub replicas: usize,
}

/// Where blobs live.
#[derive(Debug, Clone)]
pub enum BlobSettings {
    /// `VERDICT_ARTIFACTS_STORE=disk` (default).
    Disk(DiskSettings),
    /// `VERDICT_ARTIFACTS_STORE=s3`.
    S3(S3Settings),
}

#[derive(Clone)]
pub struct DiskSettings {
    /// `VERDICT_ARTIFACTS_DIR`, default `<VERDICT_DATA_DIR>/artifacts`.
    pub dir: PathBuf,
    /// `VERDICT_ARTIFACTS_LISTEN`, default `127.0.0.1:0`: the service's own HTTP server
    /// for signed uploads and downloads (the gateway proxies it).
    pub listen: SocketAddr,
    /// `VERDICT_ARTIFACTS_ADVERTISE_URL`: the base URL gateways reach that server at;
    /// default `http://<bound address>` (set it when listening on 0.0.0.0).
    pub advertise_url: Option<String>,
    /// `VERDICT_ARTIFACTS_SECRET`: HMAC key of signed URLs; generated and kept in the
    /// artifacts database when unset.
    pub secret: Option<String>,
}

impl std::fmt::Debug for DiskSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskSettings")
            .field("dir", &self.dir)
            .field("listen", &self.listen)
            .field("advertise_url", &self.advertise_url)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

#[derive(Clone)]
pub struct S3Settings {
    /// `VERDICT_S3_ENDPOINT`, e.g. `http://127.0.0.1:9002`; AWS when unset.
    pub endpoint: Option<String>,
    /// `VERDICT_S3_PUBLIC_ENDPOINT`: where clients reach the store, named in presigned
    /// URLs when it differs from where this service reaches it (`http://minio:9000`
    /// inside a compose network, say); `endpoint` when unset.
    pub public_endpoint: Option<String>,
    /// `VERDICT_S3_REGION`, default `us-east-1`.
    pub region: String,
    /// `VERDICT_S3_BUCKET`, default `verdict-artifacts`.
    pub bucket: String,
    /// `VERDICT_S3_ACCESS_KEY` and `VERDICT_S3_SECRET_KEY`.
    pub access_key: String,
    pub secret_key: String,
    /// `VERDICT_S3_PATH_STYLE`, default true (MinIO and most self-hosted stores).
    pub path_style: bool,
    /// `VERDICT_S3_MULTIPART_THRESHOLD`, default 64 MiB: larger uploads use presigned
    /// multipart.
    pub multipart_threshold: u64,
    /// `VERDICT_S3_PART_SIZE`, default 64 MiB (at least 5 MiB, S3's minimum).
    pub part_size: u64,
    /// `VERDICT_S3_PREFIX`, default [`DEFAULT_S3_PREFIX`]: new objects' keys start with
    /// it, and the sweeper lists (and deletes strays) only below it, so a bucket can be
    /// shared with other software.
    pub key_prefix: String,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("public_endpoint", &self.public_endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &"[redacted]")
            .field("path_style", &self.path_style)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("part_size", &self.part_size)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

fn invalid(name: &str, value: impl Into<String>, reason: &str) -> SettingError {
    SettingError {
        name: name.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let data_dir = PathBuf::from(env.string("VERDICT_DATA_DIR", "./data"));
        let blobs = match env
            .string("VERDICT_ARTIFACTS_STORE", "disk")
            .to_ascii_lowercase()
            .as_str()
        {
            "disk" => BlobSettings::Disk(DiskSettings {
                dir: env
                    .get("VERDICT_ARTIFACTS_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| data_dir.join("artifacts")),
                listen: env.parse(
                    "VERDICT_ARTIFACTS_LISTEN",
                    SocketAddr::from(([127, 0, 0, 1], 0)),
                )?,
                advertise_url: env.get("VERDICT_ARTIFACTS_ADVERTISE_URL"),
                secret: env.secret("VERDICT_ARTIFACTS_SECRET")?,
            }),
            "s3" => {
                let part_size = env.parse("VERDICT_S3_PART_SIZE", 64 * MIB)?;
                if part_size < 5 * MIB {
                    return Err(invalid(
                        "VERDICT_S3_PART_SIZE",
                        part_size.to_string(),
                        "must be at least 5 MiB (5242880)",
                    ));
                }
                let required = |name: &str| {
                    env.secret(name)?.ok_or_else(|| {
                        invalid(name, "", "required with VERDICT_ARTIFACTS_STORE=s3")
                    })
                };
                let public_endpoint = env.get("VERDICT_S3_PUBLIC_ENDPOINT");
                if let Some(url) = &public_endpoint {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(invalid(
                            "VERDICT_S3_PUBLIC_ENDPOINT",
                            url.as_str(),
                            "must be an http:// or https:// URL",
                        ));
                    }
                }
                let key_prefix = env.string("VERDICT_S3_PREFIX", DEFAULT_S3_PREFIX);
                if key_prefix.len() > MAX_S3_PREFIX_BYTES
                    || key_prefix.starts_with('/')
                    || key_prefix.chars().any(char::is_control)
                {
                    return Err(invalid(
                        "VERDICT_S3_PREFIX",
                        key_prefix,
                        "must be at most 512 bytes, without control characters or a leading /",
                    ));
                }
                BlobSettings::S3(S3Settings {
                    endpoint: env.get("VERDICT_S3_ENDPOINT"),
                    public_endpoint,
                    region: env.string("VERDICT_S3_REGION", "us-east-1"),
                    bucket: env.string("VERDICT_S3_BUCKET", "verdict-artifacts"),
                    access_key: required("VERDICT_S3_ACCESS_KEY")?,
                    secret_key: required("VERDICT_S3_SECRET_KEY")?,
                    path_style: env.flag("VERDICT_S3_PATH_STYLE", true)?,
                    multipart_threshold: env.parse("VERDICT_S3_MULTIPART_THRESHOLD", 64 * MIB)?,
                    part_size,
                    key_prefix,
                })
            }
            other => {
                return Err(invalid(
                    "VERDICT_ARTIFACTS_STORE",
                    other,
                    "expected disk or s3",
                ))
            }
        };
        Ok(Self {
            bus: BusSettings::from_env(env, "verdict-artifacts")?,
            store: StoreSettings::from_env(env, "artifacts")?,
            blobs,
            url_ttl: env.duration("VERDICT_ARTIFACTS_URL_TTL", Duration::from_secs(15 * 60))?,
            max_size: env.parse("VERDICT_ARTIFACTS_MAX_SIZE", 5 * GIB)?,
            project_quota: env.parse("VERDICT_ARTIFACTS_PROJECT_QUOTA", 100 * GIB)?,
            upload_grace: env.duration(
                "VERDICT_ARTIFACTS_UPLOAD_GRACE",
                Duration::from_secs(24 * 3600),
            )?,
            sweep_interval: env
                .duration("VERDICT_ARTIFACTS_SWEEP_INTERVAL", Duration::from_secs(600))?,
            replicas: env.parse("VERDICT_STREAM_REPLICAS", 1)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_store_is_disk_under_the_data_dir() {
        let env = Env::from_pairs([("VERDICT_DATA_DIR", "/srv/v")]);
        let settings = Settings::from_env(&env).unwrap();
        match settings.blobs {
            BlobSettings::Disk(disk) => {
                assert_eq!(disk.dir, PathBuf::from("/srv/v/artifacts"));
                assert_eq!(disk.listen.port(), 0);
            }
            BlobSettings::S3(_) => panic!("disk expected"),
        }
        assert_eq!(settings.url_ttl, Duration::from_secs(900));
        assert_eq!(settings.max_size, 5 * GIB);
    }

    #[test]
    fn s3_needs_credentials_and_hides_the_secret() {
        let env = Env::from_pairs([("VERDICT_ARTIFACTS_STORE", "s3")]);
        assert_eq!(
            Settings::from_env(&env).unwrap_err().name,
            "VERDICT_S3_ACCESS_KEY"
        );
        let env = env.with([
            ("VERDICT_S3_ACCESS_KEY", "ak"),
            ("VERDICT_S3_SECRET_KEY", "very-secret"),
        ]);
        let settings = Settings::from_env(&env).unwrap();
        assert!(!format!("{settings:?}").contains("very-secret"));
    }

    #[test]
    fn a_public_endpoint_must_be_an_http_url() {
        let env = Env::from_pairs([
            ("VERDICT_ARTIFACTS_STORE", "s3"),
            ("VERDICT_S3_ACCESS_KEY", "ak"),
            ("VERDICT_S3_SECRET_KEY", "sk"),
            ("VERDICT_S3_PUBLIC_ENDPOINT", "s3.example.com"),
        ]);
        assert_eq!(
            Settings::from_env(&env).unwrap_err().name,
            "VERDICT_S3_PUBLIC_ENDPOINT"
        );
        let env = env.with([("VERDICT_S3_PUBLIC_ENDPOINT", "https://s3.example.com")]);
        match Settings::from_env(&env).unwrap().blobs {
            BlobSettings::S3(s3) => {
                assert_eq!(
                    s3.public_endpoint.as_deref(),
                    Some("https://s3.example.com")
                )
            }
            BlobSettings::Disk(_) => panic!("s3 expected"),
        }
    }

    #[test]
    fn new_objects_go_below_a_prefix_unless_told_otherwise() {
        let env = Env::from_pairs([
            ("VERDICT_ARTIFACTS_STORE", "s3"),
            ("VERDICT_S3_ACCESS_KEY", "ak"),
            ("VERDICT_S3_SECRET_KEY", "sk"),
        ]);
        let prefix = |env: &Env| match Settings::from_env(env).map(|s| s.blobs) {
            Ok(BlobSettings::S3(s3)) => Ok(s3.key_prefix),
            Ok(BlobSettings::Disk(_)) => panic!("s3 expected"),
            Err(err) => Err(err.name),
        };
        assert_eq!(prefix(&env).unwrap(), "verdict-artifacts/");
        let env = env.with([("VERDICT_S3_PREFIX", "ci/verdict/")]);
        assert_eq!(prefix(&env).unwrap(), "ci/verdict/");
        for bad in ["/abs/", "a\nb", &"p".repeat(513)] {
            let env = env.clone().with([("VERDICT_S3_PREFIX", bad)]);
            assert_eq!(prefix(&env).unwrap_err(), "VERDICT_S3_PREFIX", "{bad:?}");
        }
    }

    #[test]
    fn parts_below_the_s3_minimum_are_refused() {
        let env = Env::from_pairs([
            ("VERDICT_ARTIFACTS_STORE", "s3"),
            ("VERDICT_S3_ACCESS_KEY", "ak"),
            ("VERDICT_S3_SECRET_KEY", "sk"),
            ("VERDICT_S3_PART_SIZE", "1000"),
        ]);
        assert_eq!(
            Settings::from_env(&env).unwrap_err().name,
            "VERDICT_S3_PART_SIZE"
        );
    }
}
