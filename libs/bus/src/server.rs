//! A `nats-server` child process with JetStream: what `verdict up` starts when no
//! `NATS_URL` is given, and what the test harness starts for every test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use tokio::process::{Child, Command};
use verdict_contracts::bus_access::{self, BusUser};

/// The script that installs nats-server; named in every "not found" error.
pub const INSTALL_HINT: &str =
    "run deploy/install-deps.sh (it installs nats-server into .tools/bin)";

/// The largest message the servers we start accept (the most NATS allows is 64 MiB).
pub const MAX_PAYLOAD: usize = 8 << 20;

/// Why a nats-server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("nats-server not found (looked at $VERDICT_NATS_SERVER, PATH and {searched}); {INSTALL_HINT}")]
    NotFound { searched: String },
    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error("nats-server did not report its port within {0:?}; see its log at {1}")]
    NoPort(Duration, String),
    #[error("nats-server exited during start ({status}); see its log at {log}")]
    Exited { status: String, log: String },
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The JetStream storage the servers we start allow. Every stream Verdict declares bounds
/// its own bytes; left unset, nats-server allows 75% of the disk free at start and refuses
/// to create streams whose limits add up to more, so a machine with less free space than
/// the streams may one day hold could not start at all.
const MAX_FILE_STORE: &str = "1TB";

/// One password per bus user ([`BusUser`]) for a nats-server this process starts: the
/// server requires them, and each process connects as its own user, within the
/// permissions `bus_access` gives it.
#[derive(Clone)]
pub struct BusPasswords(HashMap<BusUser, String>);

impl BusPasswords {
    /// Fresh random passwords (128 bits each).
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut rng = rand::rngs::OsRng;
        Self(
            BusUser::ALL
                .into_iter()
                .map(|user| {
                    let mut bytes = [0u8; 16];
                    rng.fill_bytes(&mut bytes);
                    let password = bytes.iter().map(|b| format!("{b:02x}")).collect();
                    (user, password)
                })
                .collect(),
        )
    }

    pub fn password(&self, user: BusUser) -> &str {
        self.0.get(&user).map(String::as_str).unwrap_or_default()
    }

    /// `server` (a `nats://host:port` URL) signed in as `user`.
    pub fn url(&self, user: BusUser, server: &str) -> String {
        let address = server.strip_prefix("nats://").unwrap_or(server);
        format!("nats://{}:{}@{address}", user.name(), self.password(user))
    }

    /// The server configuration's `authorization` block.
    fn authorization(&self) -> String {
        bus_access::authorization(|user| format!("\"{}\"", self.password(user)))
    }
}

impl std::fmt::Debug for BusPasswords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BusPasswords(..)")
    }
}

/// Where to run the server and what to call it.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The binary; found with [`find_binary`] when `None`.
    pub binary: Option<PathBuf>,
    /// JetStream storage and the server log live here.
    pub data_dir: PathBuf,
    /// Client port; `None` lets the server pick a free one.
    pub port: Option<u16>,
    /// Extra directories to look for `nats-server` in.
    pub search_dirs: Vec<PathBuf>,
    /// The users the server requires; `None` lets anyone connect and do anything.
    pub passwords: Option<BusPasswords>,
}

/// A running nats-server. Stopped (SIGTERM, then SIGKILL after a grace period) by
/// [`NatsServer::stop`]; killed when dropped.
pub struct NatsServer {
    child: Child,
    port: u16,
    data_dir: PathBuf,
}

impl NatsServer {
    pub async fn start(options: ServerOptions) -> Result<Self, ServerError> {
        let binary = match options.binary {
            Some(binary) => binary,
            None => find_binary(&options.search_dirs)?,
        };
        let io_error = |path: &Path| {
            let path = path.display().to_string();
            move |source| ServerError::Io { path, source }
        };
        let ports_dir = options.data_dir.join("ports");
        let store_dir = options.data_dir.join("jetstream");
        std::fs::create_dir_all(&ports_dir).map_err(io_error(&ports_dir))?;
        std::fs::create_dir_all(&store_dir).map_err(io_error(&store_dir))?;
        let log = options.data_dir.join("nats-server.log");
        // Result batches with captured output need more than the 1 MiB default.
        let mut conf = format!(
            "max_payload: {MAX_PAYLOAD}\njetstream {{ max_file_store: {MAX_FILE_STORE} }}\n"
        );
        if let Some(passwords) = &options.passwords {
            conf.push_str(&passwords.authorization());
        }
        let config = options.data_dir.join("nats.conf");
        write_private(&config, &conf).map_err(io_error(&config))?;
        let port = options.port.map_or("-1".to_owned(), |p| p.to_string());
        let mut command = Command::new(&binary);
        // SIGTERM lets it flush JetStream on the way out.
        die_with_parent(&mut command, libc::SIGTERM);
        let child = command
            .arg("-c")
            .arg(&config)
            .args(["-a", "127.0.0.1", "-p", &port, "-js", "-sd"])
            .arg(&store_dir)
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ServerError::Spawn {
                binary: binary.display().to_string(),
                source,
            })?;
        let mut server = Self {
            child,
            port: 0,
            data_dir: options.data_dir,
        };
        server.port = server.wait_for_port(&ports_dir, &log).await?;
        Ok(server)
    }

    /// Reads the port from the file nats-server writes once it listens.
    async fn wait_for_port(&mut self, ports_dir: &Path, log: &Path) -> Result<u16, ServerError> {
        let limit = Duration::from_secs(10);
        let started = Instant::now();
        let pid = self.child.id().unwrap_or_default();
        // nats-server names the file after its executable and pid.
        let ports_file = ports_dir.join(format!("nats-server_{pid}.ports"));
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().ok().flatten() {
                return Err(ServerError::Exited {
                    status: status.to_string(),
                    log: log.display().to_string(),
                });
            }
            if let Some(port) = read_client_port(&ports_file) {
                return Ok(port);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(ServerError::NoPort(limit, log.display().to_string()))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Asks the server to shut down and waits for it; kills it after 5 seconds.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Has the child process receive `signal` when this process dies, however it dies: a
/// crashed `verdict up` or test run must not leave servers behind.
pub fn die_with_parent(command: &mut Command, signal: libc::c_int) {
    // SAFETY: prctl(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, signal);
            Ok(())
        });
    }
}

/// Writes a file only its owner may read (it may hold passwords).
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

fn read_client_port(ports_file: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(ports_file).ok()?;
    let ports: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = ports.get("nats")?.as_array()?.first()?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}

/// Finds `nats-server`: `$VERDICT_NATS_SERVER`, then `PATH`, then `dirs`.
pub fn find_binary(dirs: &[PathBuf]) -> Result<PathBuf, ServerError> {
    if let Some(path) = std::env::var_os("VERDICT_NATS_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .iter()
        .chain(dirs)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| ServerError::NotFound {
            searched: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_port_is_read_from_the_ports_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nats-server_1.ports");
        std::fs::write(
            &file,
            r#"{"nats":["nats://127.0.0.1:41234"],"monitoring":[]}"#,
        )
        .unwrap();
        assert_eq!(read_client_port(&file), Some(41234));
    }

    #[test]
    fn a_missing_binary_names_the_install_script() {
        let err = ServerError::NotFound {
            searched: "/nowhere".into(),
        };
        assert!(err.to_string().contains("deploy/install-deps.sh"));
    }
}
