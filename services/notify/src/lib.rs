//! The notify service: project webhooks in its own SQLite database, deliveries of run
//! events to them (signed per Standard Webhooks, retried with backoff for a day, kept
//! in the database so restarts lose none), Slack messages, and GitHub or GitLab commit
//! statuses. See DESIGN.md and the README ("Notifications").

mod api;
mod config;
mod domain;
mod error;
mod events;
mod metrics;
mod sender;
mod store;

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use verdict_bus::tasks::Tasks;
use verdict_bus::{Bus, ServiceHost};
use verdict_contracts::{streams, ServiceName};
use verdict_store::at_rest::AtRest;
use verdict_store::Store;

pub use config::{DeliverySettings, Provider, Settings};
pub use domain::retry::RetryPolicy;
pub use error::Error;
pub use events::{COMMIT_ATTRIBUTE, PROVIDER_ATTRIBUTE, REPOSITORY_ATTRIBUTE};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Serves the notify service until `shutdown` fires, then finishes in-flight requests
/// and attempts, drains the bus connection and closes the database.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    metrics::describe();
    let store = Store::open(settings.store.clone(), store::MIGRATIONS).await?;
    let client = verdict_bus::connect(&settings.bus).await?;
    verdict_bus::streams::ensure_exists(&client, &[&streams::EVENTS], settings.replicas).await?;
    let settings = Arc::new(settings);
    let due = Arc::new(Notify::new());
    let bus = Bus::new(client.clone(), &settings.bus);
    if matches!(settings.key_encryption, AtRest::Plain) {
        tracing::warn!("webhook secrets are stored unencrypted in notify.db; set VERDICT_KEY_ENCRYPTION_KEY to seal them");
    }
    let at_rest = settings.key_encryption.clone();
    let sealed = store
        .write(move |conn| domain::webhooks::seal_plain_secrets(conn, &at_rest))
        .await?;
    if sealed > 0 {
        tracing::info!(sealed, "sealed webhook secrets stored plain");
    }
    let webhooks = domain::webhooks::Webhooks {
        store: store.clone(),
        at_rest: settings.key_encryption.clone(),
        bus: bus.clone(),
        allowed_networks: Arc::new(settings.delivery.allowed_networks.clone()),
        max_webhooks: settings.max_webhooks,
        due: due.clone(),
    };
    let sender = sender::Sender::new(store.clone(), &settings, due.clone())?;
    let mut host = ServiceHost::start(
        client,
        ServiceName::Notify,
        VERSION,
        settings.bus.instance_file.as_deref(),
    )
    .await?;
    api::register(&mut host, webhooks).await?;
    let stop = shutdown.child_token();
    let work = CancellationToken::new();
    let mut tasks = Tasks::new(stop.clone());
    let deliveries = events::Deliveries {
        store: store.clone(),
        bus,
        settings: settings.clone(),
        due,
    };
    tasks.critical(
        "run events consumer",
        events::consume(deliveries, work.clone()),
    );
    tasks.critical("sender", sender.run(work.clone()));
    tasks.logged(
        "idempotency key expiry",
        verdict_store::idempotency::forget_expired_periodically(store.clone(), work.clone()),
    );
    tracing::info!(database = %store.path().display(), "notify service ready");
    let (served, tasks_ended) = tasks.run_alongside(host.serve(stop), work).await;
    let closed = store.close().await;
    served?;
    tasks_ended?;
    Ok(closed?)
}
