//! Work that outlives requests: deleting artifacts of deleted runs (a durable JetStream
//! consumer of `run.deleted`) and the periodic sweeper.

use std::time::Duration;

use async_nats::jetstream::{consumer, AckKind};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use verdict_contracts::events::{kind_filter, Event, EventKind};
use verdict_contracts::streams;

use crate::domain::Artifacts;
use crate::Error;

/// The durable consumer's name: one per service, shared by its instances.
pub const RUN_DELETED_CONSUMER: &str = "verdict-artifacts-run-deleted";

/// Consumes `run.deleted` until `shutdown`; a deletion that fails is redelivered.
pub async fn consume_run_deletions(
    artifacts: Artifacts,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let stream = artifacts
        .jetstream
        .get_stream(streams::EVENTS.name)
        .await
        .map_err(|err| Error::Consumer(err.to_string()))?;
    let consumer = stream
        .get_or_create_consumer(
            RUN_DELETED_CONSUMER,
            consumer::pull::Config {
                durable_name: Some(RUN_DELETED_CONSUMER.to_owned()),
                filter_subject: kind_filter(EventKind::RunDeleted),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(120),
                ..Default::default()
            },
        )
        .await
        .map_err(|err| Error::Consumer(err.to_string()))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|err| Error::Consumer(err.to_string()))?;
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            next = messages.next() => next,
        };
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(err)) => {
                tracing::warn!(error = %err, "run.deleted consumer error; continuing");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            None => return Ok(()),
        };
        let ack = match serde_json::from_slice::<Event>(&message.payload) {
            Ok(Event::RunDeleted { run_id, .. }) => match artifacts.purge_run(run_id.clone()).await
            {
                Ok(deleted) => {
                    tracing::info!(%run_id, deleted, "deleted the artifacts of a deleted run");
                    AckKind::Ack
                }
                Err(err) => {
                    tracing::error!(%run_id, error = %err, "could not delete a run's artifacts; will retry");
                    AckKind::Nak(Some(Duration::from_secs(5)))
                }
            },
            Ok(_) => AckKind::Ack,
            Err(err) => {
                tracing::warn!(error = %err, subject = %message.subject, "malformed run.deleted event dropped");
                AckKind::Term
            }
        };
        if let Err(err) = message.ack_with(ack).await {
            tracing::warn!(error = %err, "could not acknowledge a run.deleted event");
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
        match artifacts.sweep(grace).await {
            Ok(report) if report == Default::default() => {}
            Ok(report) => tracing::info!(?report, "artifact sweep"),
            Err(err) => tracing::warn!(error = %err, "artifact sweep failed; will retry"),
        }
    }
}

/// Creates the events stream if this service starts first.
pub async fn ensure_streams(client: &async_nats::Client, replicas: usize) -> Result<(), Error> {
    verdict_bus::streams::ensure(client, &[&streams::EVENTS], replicas).await?;
    Ok(())
}
