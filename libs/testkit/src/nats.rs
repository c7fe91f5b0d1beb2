use std::path::PathBuf;

use tempfile::TempDir;
use verdict_bus::server::{BusPasswords, NatsServer, ServerOptions};
use verdict_contracts::bus_access::BusUser;

/// A real nats-server with JetStream, on a free port, storing in a temporary directory
/// that is removed with it. It requires the bus users `verdict up` sets up, each within
/// its permissions, so tests exercise those too.
pub struct TestNats {
    server: Option<NatsServer>,
    passwords: BusPasswords,
    dir: TempDir,
}

impl TestNats {
    /// Starts the server. Panics, naming the install script, when nats-server is missing.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory for nats-server");
        let passwords = BusPasswords::generate();
        let server = NatsServer::start(ServerOptions {
            binary: None,
            data_dir: dir.path().to_path_buf(),
            port: None,
            search_dirs: vec![workspace_root().join(".tools/bin")],
            passwords: Some(passwords.clone()),
        })
        .await
        .unwrap_or_else(|err| panic!("cannot start nats-server for the test: {err}"));
        Self {
            server: Some(server),
            passwords,
            dir,
        }
    }

    /// The server's URL signed in as the administrator, who may do anything.
    pub fn url(&self) -> String {
        self.url_as(BusUser::Admin)
    }

    /// The server's URL signed in as `user`.
    pub fn url_as(&self, user: BusUser) -> String {
        self.passwords.url(user, &self.server().url())
    }

    pub fn port(&self) -> u16 {
        self.server().port()
    }

    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// A client signed in as the administrator, as an operator's tool would be.
    pub async fn client(&self) -> async_nats::Client {
        self.client_as(BusUser::Admin).await
    }

    /// A client signed in as `user`, as that process would be.
    pub async fn client_as(&self, user: BusUser) -> async_nats::Client {
        async_nats::ConnectOptions::with_user_and_password(
            user.name().to_owned(),
            self.passwords.password(user).to_owned(),
        )
        .custom_inbox_prefix(user.inbox_prefix())
        .connect(self.server().url())
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

/// A tool `deploy/install-deps.sh` installs: the path in `env_var` if set, else `name` on
/// `PATH`, else `.tools/bin/<name>` of this workspace.
pub(crate) fn installed_tool(env_var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or_else(|| workspace_root().join(".tools/bin").join(name))
}
