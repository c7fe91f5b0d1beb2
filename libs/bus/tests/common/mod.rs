//! What the bus tests share: a real nats-server in a temporary directory.
// Each test file compiles this module on its own and uses only some of it.
#![allow(dead_code)]

use std::path::PathBuf;

use tempfile::TempDir;
use verdict_bus::server::{BusPasswords, NatsServer, ServerOptions};

/// A nats-server with JetStream that lets anyone do anything, stopped when dropped with
/// its directory.
pub async fn nats() -> (NatsServer, TempDir) {
    nats_with(None).await
}

/// A nats-server with JetStream requiring these users, if any.
pub async fn nats_with(passwords: Option<BusPasswords>) -> (NatsServer, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let server = NatsServer::start(ServerOptions {
        binary: None,
        data_dir: dir.path().to_path_buf(),
        port: None,
        search_dirs: vec![root.join(".tools/bin")],
        passwords,
    })
    .await
    .expect("nats-server starts");
    (server, dir)
}
