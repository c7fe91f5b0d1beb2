//! `verdict up`: every service in one process, each with its own NATS connection and its
//! own SQLite file under the data dir, and a nats-server child unless `NATS_URL` is set.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use verdict_bus::server::{write_private, BusPasswords, NatsServer, ServerError, ServerOptions};
use verdict_contracts::bus_access::BusUser;
use verdict_contracts::ServiceName;
use verdict_settings::{Env, SettingError};

/// Settings of the whole single-machine system, read once.
pub struct UpSettings {
    pub data_dir: PathBuf,
    /// `None` starts a nats-server child.
    pub nats_url: Option<String>,
    /// `VERDICT_NATS_PORT`: the child's client port; a free one when unset.
    pub nats_port: Option<u16>,
    /// Every setting, with the command-line flags on top.
    env: Env,
}

impl UpSettings {
    pub fn from_env(
        env: &Env,
        listen: Option<SocketAddr>,
        data_dir: Option<PathBuf>,
    ) -> Result<Self, SettingError> {
        let data_dir =
            data_dir.unwrap_or_else(|| PathBuf::from(env.string("VERDICT_DATA_DIR", "./data")));
        let mut flags = vec![(
            "VERDICT_DATA_DIR".to_owned(),
            data_dir.display().to_string(),
        )];
        if let Some(listen) = listen {
            flags.push(("VERDICT_LISTEN".to_owned(), listen.to_string()));
        }
        let env = env.clone().with(flags);
        // Parse every service's settings now so a mistake stops us before anything starts.
        verdict_gateway::Settings::from_env(&env)?;
        verdict_auth::Settings::from_env(&env)?;
        verdict_runs::Settings::from_env(&env)?;
        verdict_artifacts::Settings::from_env(&env)?;
        verdict_realtime::Settings::from_env(&env)?;
        verdict_notify::Settings::from_env(&env)?;
        Ok(Self {
            data_dir,
            nats_url: env.secret("NATS_URL")?,
            nats_port: env.parse_optional("VERDICT_NATS_PORT")?,
            env,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(transparent)]
    NatsServer(#[from] ServerError),
    #[error(transparent)]
    Setting(#[from] SettingError),
    #[error("{service} failed: {reason}")]
    Service {
        service: &'static str,
        reason: String,
    },
}

/// Runs everything until `shutdown`; then stops the gateway first (so no request is cut
/// off by a service going away), then the services, then nats-server.
pub async fn run(settings: UpSettings, shutdown: CancellationToken) -> Result<(), UpError> {
    // The nats-server started here requires a user per process (fresh passwords at
    // every start), each allowed only its own subjects; an external one is the
    // operator's to secure.
    let passwords = BusPasswords::generate();
    let nats = match &settings.nats_url {
        Some(_) => None,
        None => Some(
            NatsServer::start(ServerOptions {
                binary: None,
                data_dir: settings.data_dir.join("nats"),
                port: settings.nats_port,
                search_dirs: tool_dirs(),
                passwords: Some(passwords.clone()),
            })
            .await?,
        ),
    };
    let env_of = |user: BusUser| match &nats {
        Some(server) => settings
            .env
            .clone()
            .with([("NATS_URL", passwords.url(user, &server.url()))]),
        None => settings.env.clone(),
    };
    if let Some(server) = &nats {
        tracing::info!(url = %server.url(), "started nats-server with JetStream");
        // For operators' tools (the nats CLI, stream backups): the administrator's URL,
        // readable by this user only.
        let admin = settings.data_dir.join("nats").join(ADMIN_URL_FILE);
        write_private(&admin, &passwords.url(BusUser::Admin, &server.url())).map_err(|source| {
            ServerError::Io {
                path: admin.display().to_string(),
                source,
            }
        })?;
    }
    let service_env = |service| env_of(BusUser::Service(service));

    let services_stop = CancellationToken::new();
    let gateway_stop = CancellationToken::new();
    let mut services = JoinSet::new();
    spawn(
        &mut services,
        "auth",
        verdict_auth::run(
            verdict_auth::Settings::from_env(&service_env(ServiceName::Auth))?,
            services_stop.clone(),
        ),
    );
    spawn(
        &mut services,
        "runs",
        verdict_runs::run(
            verdict_runs::Settings::from_env(&service_env(ServiceName::Runs))?,
            services_stop.clone(),
        ),
    );
    spawn(
        &mut services,
        "artifacts",
        verdict_artifacts::run(
            verdict_artifacts::Settings::from_env(&service_env(ServiceName::Artifacts))?,
            services_stop.clone(),
        ),
    );
    spawn(
        &mut services,
        "realtime",
        verdict_realtime::run(
            verdict_realtime::Settings::from_env(&service_env(ServiceName::Realtime))?,
            services_stop.clone(),
        ),
    );
    spawn(
        &mut services,
        "notify",
        verdict_notify::run(
            verdict_notify::Settings::from_env(&service_env(ServiceName::Notify))?,
            services_stop.clone(),
        ),
    );
    let mut gateway = JoinSet::new();
    spawn(
        &mut gateway,
        "gateway",
        verdict_gateway::run(
            verdict_gateway::Settings::from_env(&env_of(BusUser::Gateway))?,
            gateway_stop.clone(),
        ),
    );

    // Run until a signal, or until any part stops on its own (which is a failure).
    let mut failure = tokio::select! {
        () = shutdown.cancelled() => None,
        Some(ended) = gateway.join_next() => Some(flatten(ended)),
        Some(ended) = services.join_next() => Some(flatten(ended)),
    };
    gateway_stop.cancel();
    while let Some(ended) = gateway.join_next().await {
        failure = failure.or(Some(flatten(ended)).filter(Result::is_err));
    }
    services_stop.cancel();
    while let Some(ended) = services.join_next().await {
        failure = failure.or(Some(flatten(ended)).filter(Result::is_err));
    }
    if let Some(server) = nats {
        server.stop().await;
    }
    match failure {
        None | Some(Ok(())) if shutdown.is_cancelled() => Ok(()),
        Some(Err(err)) => Err(err),
        None | Some(Ok(())) => Err(UpError::Service {
            service: "a service",
            reason: "stopped unexpectedly".into(),
        }),
    }
}

fn spawn<E: std::fmt::Display>(
    set: &mut JoinSet<Result<(), UpError>>,
    service: &'static str,
    task: impl Future<Output = Result<(), E>> + Send + 'static,
) {
    set.spawn(async move {
        task.await.map_err(|err| UpError::Service {
            service,
            reason: err.to_string(),
        })
    });
}

fn flatten(ended: Result<Result<(), UpError>, tokio::task::JoinError>) -> Result<(), UpError> {
    ended.unwrap_or_else(|err| {
        Err(UpError::Service {
            service: "a service",
            reason: err.to_string(),
        })
    })
}

/// The file under `<data dir>/nats` holding the nats-server administrator's URL, with
/// its password.
pub const ADMIN_URL_FILE: &str = "admin-url";

/// Where `deploy/install-deps.sh` puts nats-server, seen from the working directory and
/// from a binary under `target/<profile>/`.
fn tool_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(".tools/bin")];
    if let Ok(exe) = std::env::current_exe() {
        if let Some(repo) = exe
            .parent()
            .and_then(|p| p.parent())
            .and_then(|p| p.parent())
        {
            dirs.push(repo.join(".tools/bin"));
        }
    }
    dirs
}
