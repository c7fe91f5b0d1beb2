//! A real S3-compatible server for tests: `s3s-fs` (installed into `.tools/bin` by
//! `deploy/install-deps.sh`), which verifies SigV4 signatures and presigned URLs. One
//! per test, on a free port, storing in a temporary directory (a bucket is a directory).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::ports::free_port;

pub const ACCESS_KEY: &str = "verdict-test-access";
pub const SECRET_KEY: &str = "verdict-test-secret-key";
pub const BUCKET: &str = "verdict-test-artifacts";

pub struct TestS3 {
    _child: Child,
    port: u16,
    dir: TempDir,
}

impl TestS3 {
    /// Starts the server with one empty bucket, [`BUCKET`]. Panics, naming the install
    /// script, when s3s-fs is missing.
    pub async fn start() -> Self {
        let binary = crate::nats::installed_tool("VERDICT_S3S_FS", "s3s-fs");
        assert!(
            binary.is_file(),
            "s3s-fs not found at {}; run deploy/install-deps.sh",
            binary.display()
        );
        let dir = tempfile::tempdir().expect("temporary directory for s3s-fs");
        std::fs::create_dir_all(dir.path().join(BUCKET)).expect("bucket directory");
        // A port that was free a moment ago; retried if another process takes it first.
        for _ in 0..5 {
            let port = free_port();
            let mut command = Command::new(&binary);
            verdict_bus::server::die_with_parent(&mut command, libc::SIGKILL);
            let mut child = command
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()));
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return Self {
                        _child: child,
                        port,
                        dir,
                    };
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = child.kill().await;
        }
        panic!("s3s-fs did not start");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The directory holding the bucket's objects.
    pub fn bucket_dir(&self) -> PathBuf {
        self.dir.path().join(BUCKET)
    }

    /// The settings that point the artifacts service at this server.
    pub fn settings(&self) -> Vec<(String, String)> {
        [
            ("VERDICT_ARTIFACTS_STORE", "s3".to_owned()),
            ("VERDICT_S3_ENDPOINT", self.endpoint()),
            ("VERDICT_S3_REGION", "us-east-1".to_owned()),
            ("VERDICT_S3_BUCKET", BUCKET.to_owned()),
            ("VERDICT_S3_ACCESS_KEY", ACCESS_KEY.to_owned()),
            ("VERDICT_S3_SECRET_KEY", SECRET_KEY.to_owned()),
            ("VERDICT_S3_PATH_STYLE", "true".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// Names of the regular files directly in `dir` (hidden ones skipped).
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
                .filter(|name| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
