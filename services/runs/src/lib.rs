//! The runs service: runs and test results, live ingest through JetStream, queries,
//! test history and flakiness. See DESIGN.md ("Flows").

mod api;
mod config;
mod context;
mod convert;
pub mod domain;
mod error;
mod finish;
mod flaky;
mod housekeeping;
pub mod import;
mod imports;
mod ingest;
mod live_events;
mod metrics;
mod outbox;
mod queries;
mod run_commands;
mod store;
mod text_indexer;
mod triage;

use tokio_util::sync::CancellationToken;
use verdict_bus::tasks::Tasks;
use verdict_bus::{Bus, ServiceHost};
use verdict_contracts::{streams, ServiceName};
use verdict_store::Store;

pub use config::Settings;
pub use error::Error;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Serves the runs service until `shutdown` fires: bus endpoints, the ingest consumer
/// and housekeeping. Then finishes in-flight work, drains the connection and closes the
/// database.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    metrics::describe();
    let store = Store::open(settings.store, store::MIGRATIONS).await?;
    let text_indexer = text_indexer::TextIndexer::open(&store).await?;
    let client = verdict_bus::connect(&settings.bus).await?;
    // The streams runs owns; live frames belong to realtime.
    let ingest_stream = streams::INGEST.with_max_bytes(settings.ingest_max_bytes);
    verdict_bus::streams::ensure(
        &client,
        &[&ingest_stream, &streams::EVENTS, &streams::TASKS],
        settings.replicas,
    )
    .await?;
    let runs = context::Runs {
        store: store.clone(),
        bus: Bus::new(client.clone(), &settings.bus),
        outbox: outbox::Outbox::default(),
        known_tests: Default::default(),
    };
    let mut host = ServiceHost::start(
        client,
        ServiceName::Runs,
        VERSION,
        settings.bus.instance_file.as_deref(),
    )
    .await?;
    let wakeup = imports::Wakeup::default();
    api::register(&mut host, runs.clone(), wakeup.clone()).await?;
    let stop = shutdown.child_token();
    let work = CancellationToken::new();
    let mut tasks = Tasks::new(stop.clone());
    tasks.critical(
        "ingest consumer",
        ingest::consume(
            runs.clone(),
            ingest_stream,
            settings.ingest_ack_wait,
            settings.replicas,
            work.clone(),
        ),
    );
    tasks.logged(
        "text indexer",
        text_indexer.run(store.clone(), work.clone()),
    );
    tasks.logged(
        "import queue",
        imports::work(runs.clone(), settings.import_retries, wakeup, work.clone()),
    );
    tasks.logged(
        "outbox relay",
        outbox::relay(runs.clone(), runs.outbox.clone(), work.clone()),
    );
    tasks.logged(
        "housekeeping",
        housekeeping::run(
            runs,
            settings.housekeeping_every,
            settings.run_timeout,
            settings.retention,
            work.clone(),
        ),
    );
    tasks.logged(
        "idempotency key expiry",
        verdict_store::idempotency::forget_expired_periodically(store.clone(), work.clone()),
    );
    tracing::info!(database = %store.path().display(), "runs service ready");
    let (served, tasks_ended) = tasks.run_alongside(host.serve(stop), work).await;
    let closed = store.close().await;
    served?;
    tasks_ended?;
    Ok(closed?)
}
