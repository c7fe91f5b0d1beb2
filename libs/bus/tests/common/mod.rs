//! What the bus tests share: a real nats-server in a temporary directory.

use std::path::PathBuf;

use tempfile::TempDir;
use verdict_bus::server::{NatsServer, ServerOptions};

/// A nats-server with JetStream, stopped when dropped with its directory.
pub async fn nats() -> (NatsServer, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let server = NatsServer::start(ServerOptions {
        binary: None,
        data_dir: dir.path().to_path_buf(),
        port: None,
        search_dirs: vec![root.join(".tools/bin")],
    })
    .await
    .expect("nats-server starts");
    (server, dir)
}
