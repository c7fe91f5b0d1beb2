//! The auth service: users, sign-in sessions, API tokens, projects and roles, and the
//! keys that sign access tokens. See DESIGN.md ("Security model").

mod access;
mod api;
mod api_tokens;
mod config;
mod context;
mod error;
mod keyed;
mod keys;
mod metrics;
mod passwords;
mod projects;
mod secrets;
mod sessions;
mod signing;
mod store;
mod users;

use std::sync::{Arc, RwLock};

use tokio_util::sync::CancellationToken;
use verdict_bus::tasks::Tasks;
use verdict_bus::ServiceHost;
use verdict_contracts::{streams, ServiceName};
use verdict_store::Store;

pub use config::{AdminBootstrap, HashingPolicy, LoginPolicy, Settings, TokenSettings};
pub use error::Error;
pub use verdict_store::at_rest::{AtRest, KeyEncryptionKey};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Serves the auth service until `shutdown` fires, then finishes in-flight requests,
/// drains the bus connection and closes the database.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    metrics::describe();
    let store = Store::open(settings.store, store::MIGRATIONS).await?;
    let client = verdict_bus::connect(&settings.bus).await?;
    let revocations =
        verdict_bus::streams::ensure_bucket(&client, &streams::REVOCATIONS, settings.replicas)
            .await?;
    if matches!(settings.key_encryption, AtRest::Plain) {
        tracing::warn!("signing keys are stored unencrypted in auth.db; set VERDICT_KEY_ENCRYPTION_KEY to seal them");
    }
    let keys = signing::load(&store, &settings.key_encryption).await?;
    let auth = context::Auth {
        store: store.clone(),
        keys: Arc::new(RwLock::new(keys)),
        tokens: settings.tokens,
        login: settings.login,
        hasher: passwords::Hasher::new(settings.hashing),
        at_rest: settings.key_encryption,
        revocations,
        client: client.clone(),
    };
    if let Some(password) = users::bootstrap_admin(&auth, &settings.admin).await? {
        // Printed to the console, never to the log: it is a secret shown once.
        println!(
            "\n  Verdict: first administrator created\n    e-mail:   {}\n    password: {password}\n  (shown once; set VERDICT_ADMIN_PASSWORD to choose it)\n",
            settings.admin.email
        );
    }
    let mut host = ServiceHost::start(
        client,
        ServiceName::Auth,
        VERSION,
        settings.bus.instance_file.as_deref(),
    )
    .await?;
    api::register(&mut host, auth.clone()).await?;
    let stop = shutdown.child_token();
    let work = CancellationToken::new();
    let mut tasks = Tasks::new(stop.clone());
    tasks.logged(
        "signing key rotation",
        signing::rotate_on_schedule(auth, settings.key_rotation, work.clone()),
    );
    tasks.logged(
        "idempotency key expiry",
        verdict_store::idempotency::forget_expired_periodically(store.clone(), work.clone()),
    );
    tracing::info!(database = %store.path().display(), "auth service ready");
    let (served, tasks_ended) = tasks.run_alongside(host.serve(stop), work).await;
    let closed = store.close().await;
    served?;
    tasks_ended?;
    Ok(closed?)
}
