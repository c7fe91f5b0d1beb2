use std::path::PathBuf;

use tempfile::TempDir;
use verdict_bus::server::{NatsServer, ServerOptions};

/// A real nats-server with JetStream, on a free port, storing in a temporary directory
/// that is removed with it.
pub struct TestNats {
    server: Option<NatsServer>,
    dir: TempDir,
}

impl TestNats {
    /// Starts the server. Panics, naming the install script, when nats-server is missing.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory for nats-server");
        let server = NatsServer::start(ServerOptions {
            binary: None,
            data_dir: dir.path().to_path_buf(),
            port: None,
            search_dirs: vec![workspace_root().join(".tools/bin")],
        })
        .await
        .unwrap_or_else(|err| panic!("cannot start nats-server for the test: {err}"));
        Self {
            server: Some(server),
            dir,
        }
    }

    pub fn url(&self) -> String {
        self.server().url()
    }

    pub fn port(&self) -> u16 {
        self.server().port()
    }

    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// A plain client, as any NATS tool would connect.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .expect("connect to the test nats-server")
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub async fn kill(&mut self) {
        if let Some(server) = self.server.take() {
            server.kill().await;
        }
    }

    fn server(&self) -> &NatsServer {
        self.server.as_ref().expect("nats-server was killed")
    }
}

pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}
