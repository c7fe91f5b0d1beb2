//! The realtime service: sequences run events into per-channel live frames and tells
//! viewers where to start. See DESIGN.md ("Live view").
//!
//! It keeps no database: frames live in the `VERDICT_LIVE` stream, one subject per
//! channel, so any number of replicas can run and a restarted one resumes from there.

mod coalesce;
mod config;
mod error;
mod log;
mod metrics;
mod sequencer;
mod subscribe;

use tokio_util::sync::CancellationToken;
use verdict_bus::tasks::Tasks;
use verdict_bus::{Bus, ServiceHost};
use verdict_contracts::{live, streams, ServiceName};

pub use config::Settings;
pub use error::Error;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Serves the realtime service until `shutdown` fires, then finishes in-flight requests
/// and drains the bus connection.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    metrics::describe();
    let client = verdict_bus::connect(&settings.bus).await?;
    verdict_bus::streams::ensure(
        &client,
        &[&streams::EVENTS, &streams::LIVE],
        settings.replicas,
    )
    .await?;
    let js = verdict_bus::jetstream(client.clone());
    let log = log::ChannelLog::open(js.clone()).await?;
    let subscriptions = subscribe::Subscriptions {
        bus: Bus::new(client.clone(), &settings.bus),
        log: log.clone(),
        replay_limit: settings.replay_limit,
    };
    let mut host = ServiceHost::start(
        client,
        ServiceName::Realtime,
        VERSION,
        settings.bus.instance_file.as_deref(),
    )
    .await?;
    host.with_state(subscriptions)
        .for_principal(
            live::SUBSCRIBE,
            |subscriptions, principal, request| async move {
                subscriptions.start(principal, request).await
            },
        )
        .await?;
    let stop = shutdown.child_token();
    let work = CancellationToken::new();
    let mut tasks = Tasks::new(stop.clone());
    tasks.critical(
        "sequencer",
        sequencer::Sequencer::new(log, settings.progress_interval).run(js, work.clone()),
    );
    tracing::info!("realtime service ready");
    let (served, tasks_ended) = tasks.run_alongside(host.serve(stop), work).await;
    served?;
    Ok(tasks_ended?)
}
