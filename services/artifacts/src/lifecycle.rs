//! Work that outlives requests: deleting artifacts of deleted runs (tasks from the
//! durable `VERDICT_TASKS` stream) and the periodic sweeper.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use verdict_bus::consume::{self, Delivery, Verdict, WorkQueue};
use verdict_contracts::streams;
use verdict_contracts::tasks::{Task, ARTIFACTS_TASKS};

use crate::domain::Artifacts;
use crate::Error;

/// The durable consumer's name: one per service, shared by its instances.
pub const TASKS_CONSUMER: &str = "verdict-artifacts-tasks";
/// How long a task that failed waits before it is tried again.
const RETRY_FAILED_TASK: Duration = Duration::from_secs(5);
/// Tasks handed over at once (each is a run's worth of deletions).
const TASKS_PER_BATCH: usize = 16;

/// Does the artifacts service's tasks until `shutdown`; a task that fails is tried
/// again later, however long it keeps failing.
pub async fn do_tasks(
    artifacts: Artifacts,
    replicas: usize,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let queue = WorkQueue {
        stream: streams::TASKS,
        consumer: TASKS_CONSUMER,
        filter: Some(ARTIFACTS_TASKS.to_owned()),
        // Deleting a large run's blobs can take a while.
        ack_wait: Duration::from_secs(120),
        max_batch: TASKS_PER_BATCH,
        rounds_in_flight: 1,
        replicas,
    };
    let client = artifacts.bus.client().clone();
    consume::consume(
        &client,
        queue,
        |deliveries| do_batch(artifacts.clone(), deliveries),
        shutdown,
    )
    .await?;
    Ok(())
}

async fn do_batch(artifacts: Artifacts, deliveries: Vec<Delivery>) -> Vec<Verdict> {
    let mut verdicts = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        verdicts.push(do_task(&artifacts, &delivery).await);
    }
    verdicts
}

async fn do_task(artifacts: &Artifacts, delivery: &Delivery) -> Verdict {
    match serde_json::from_slice::<Task>(&delivery.payload) {
        Ok(Task::DeleteRunArtifacts { run_id, .. }) => match artifacts.purge_run(run_id).await {
            Ok(deleted) => {
                tracing::info!(%run_id, deleted, "deleted the artifacts of a deleted run");
                Verdict::Done
            }
            Err(err) => {
                tracing::error!(%run_id, error = %err, "could not delete a run's artifacts; will retry");
                Verdict::Retry(RETRY_FAILED_TASK)
            }
        },
        Err(err) => {
            tracing::error!(error = %err, subject = %delivery.subject, "malformed task dropped");
            Verdict::Reject
        }
    }
}

/// Sweeps every `interval` until `shutdown` (see [`Artifacts::sweep`]).
pub async fn sweep_periodically(
    artifacts: Artifacts,
    interval: Duration,
    grace: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let swept = artifacts.sweep(grace).await;
        crate::metrics::swept(swept.as_ref().ok().copied());
        match swept {
            Ok(report) if report == Default::default() => {}
            Ok(report) => tracing::info!(?report, "artifact sweep"),
            Err(err) => tracing::warn!(error = %err, "artifact sweep failed; will retry"),
        }
    }
}

/// Creates the streams this service writes to and reads from if it starts first.
pub async fn ensure_streams(client: &async_nats::Client, replicas: usize) -> Result<(), Error> {
    verdict_bus::streams::ensure_exists(client, &[&streams::EVENTS, &streams::TASKS], replicas)
        .await?;
    Ok(())
}
