//! Idempotent creation of the JetStream streams defined in `verdict_contracts::streams`.

use async_nats::jetstream::kv;
use async_nats::jetstream::{self, stream};
use std::time::Duration;

use async_nats::Client;
use verdict_contracts::streams::{BucketSpec, Discard, Retention, Storage, StreamSpec};

use crate::backoff::{retry_within, Pauses};
use crate::BusError;

/// How long setting up a stream may keep failing before the process gives up. Every
/// process of a cluster that starts at once sets up the same streams while JetStream
/// may still be electing its leaders; such requests time out and succeed when repeated.
const SETUP_LIMIT: Duration = Duration::from_secs(30);

/// Pauses between attempts at setting up a stream.
const SETUP_PAUSES: Pauses = Pauses {
    first: Duration::from_millis(100),
    max: Duration::from_secs(2),
};

/// Runs `setup` until it succeeds or [`SETUP_LIMIT`] has passed.
async fn retrying<T, E, Fut>(what: &str, setup: impl FnMut() -> Fut) -> Result<T, BusError>
where
    E: std::error::Error + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    retry_within(
        SETUP_LIMIT,
        SETUP_PAUSES,
        setup,
        |_| true,
        |err, _| tracing::warn!(stream = what, error = %err, "JetStream setup failed, retrying"),
    )
    .await
    .map_err(|err| BusError::Stream {
        stream: what.to_owned(),
        reason: err.into(),
    })
}

/// Creates each stream, or updates it to `spec` when it exists with other settings,
/// and its keepers: what the service that owns a stream calls at every start.
pub async fn ensure(
    client: &Client,
    specs: &[&StreamSpec],
    replicas: usize,
) -> Result<(), BusError> {
    let js = jetstream::new(client.clone());
    for spec in specs {
        retrying(spec.name, || {
            js.create_or_update_stream(config(spec, replicas))
        })
        .await?;
        ensure_keepers(&js, spec).await?;
    }
    Ok(())
}

/// Creates each stream that does not exist yet, as `spec` says, and its keepers; leaves
/// existing streams as their owners set them. What a process that only publishes to a
/// stream calls, so that its owner's settings (limits an operator chose) stand.
pub async fn ensure_exists(
    client: &Client,
    specs: &[&StreamSpec],
    replicas: usize,
) -> Result<(), BusError> {
    let js = jetstream::new(client.clone());
    for spec in specs {
        retrying(spec.name, || {
            js.get_or_create_stream(config(spec, replicas))
        })
        .await?;
        ensure_keepers(&js, spec).await?;
    }
    Ok(())
}

/// Creates the stream's keepers that do not exist; existing ones keep the settings
/// their service gave them.
async fn ensure_keepers(js: &jetstream::Context, spec: &StreamSpec) -> Result<(), BusError> {
    if spec.keepers.is_empty() {
        return Ok(());
    }
    let stream = retrying(spec.name, || js.get_stream(spec.name)).await?;
    for keeper in spec.keepers {
        let config = jetstream::consumer::pull::Config {
            durable_name: Some((*keeper).to_owned()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        };
        retrying(spec.name, || {
            stream.get_or_create_consumer(keeper, config.clone())
        })
        .await?;
    }
    Ok(())
}

/// Creates the key-value bucket, or updates it to `spec`, and opens it.
pub async fn ensure_bucket(
    client: &Client,
    spec: &BucketSpec,
    replicas: usize,
) -> Result<kv::Store, BusError> {
    let js = jetstream::new(client.clone());
    retrying(spec.name, || {
        js.create_or_update_key_value(kv::Config {
            bucket: spec.name.to_owned(),
            max_age: spec.max_age,
            max_bytes: spec.max_bytes,
            history: 1,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        })
    })
    .await
}

/// A durable pull consumer on `spec`'s stream (created, or updated to these settings),
/// delivering only `filter` when given. Every message must be acknowledged within
/// `ack_wait`, or JetStream delivers it again.
pub async fn durable_consumer(
    client: &Client,
    spec: &StreamSpec,
    name: &str,
    filter: Option<String>,
    ack_wait: std::time::Duration,
) -> Result<jetstream::consumer::PullConsumer, BusError> {
    let failed = |reason: crate::BoxError| BusError::Stream {
        stream: format!("{} (consumer {name})", spec.name),
        reason,
    };
    let js = jetstream::new(client.clone());
    let stream = js
        .get_stream(spec.name)
        .await
        .map_err(|err| failed(err.into()))?;
    let config = jetstream::consumer::pull::Config {
        durable_name: Some(name.to_owned()),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait,
        max_ack_pending: 20_000,
        filter_subject: filter.unwrap_or_default(),
        deliver_policy: first_delivery(spec),
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|err| failed(err.into()))?;
    if stream.cached_info().config.num_replicas > 1 {
        wait_for_leader(consumer.clone())
            .await
            .map_err(|err| failed(err.into()))?;
    }
    Ok(consumer)
}

/// How long a new replicated consumer may take to elect its leader.
const LEADER_ELECTION_LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

/// How long a new consumer leader's subscriptions take to reach every server of the
/// cluster (route propagation: milliseconds; this leaves a wide margin).
const LEADER_SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

/// Waits until a replicated consumer has a leader whose subscriptions the whole cluster
/// knows. Pulls sent before that meet "no responders", and async-nats's pull stream does
/// not pull again after one until its heartbeat times out.
/// Where a new durable consumer starts. A stream kept by limits holds what happened
/// before the consumer existed (a day of run events): a service consuming it for the
/// first time starts with what comes next, rather than acting on that past (notify would
/// announce runs that finished before it was deployed). The queues hold only work still
/// to be done, all of it.
fn first_delivery(spec: &StreamSpec) -> jetstream::consumer::DeliverPolicy {
    match spec.retention {
        Retention::Limits => jetstream::consumer::DeliverPolicy::New,
        Retention::Interest | Retention::WorkQueue => jetstream::consumer::DeliverPolicy::All,
    }
}

async fn wait_for_leader(mut consumer: jetstream::consumer::PullConsumer) -> Result<(), String> {
    let started = std::time::Instant::now();
    loop {
        let info = consumer.info().await.map_err(|err| err.to_string())?;
        if info.cluster.as_ref().is_some_and(|c| c.leader.is_some()) {
            tokio::time::sleep(LEADER_SETTLE).await;
            return Ok(());
        }
        if started.elapsed() > LEADER_ELECTION_LIMIT {
            return Err(format!("no leader after {LEADER_ELECTION_LIMIT:?}"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn config(spec: &StreamSpec, replicas: usize) -> stream::Config {
    stream::Config {
        name: spec.name.to_owned(),
        subjects: spec.subjects.iter().map(|s| (*s).to_owned()).collect(),
        max_age: spec.max_age,
        max_bytes: spec.max_bytes,
        retention: match spec.retention {
            Retention::Limits => stream::RetentionPolicy::Limits,
            Retention::Interest => stream::RetentionPolicy::Interest,
            Retention::WorkQueue => stream::RetentionPolicy::WorkQueue,
        },
        discard: match spec.discard {
            Discard::Old => stream::DiscardPolicy::Old,
            Discard::New => stream::DiscardPolicy::New,
        },
        storage: match spec.storage {
            Storage::File => stream::StorageType::File,
            Storage::Memory => stream::StorageType::Memory,
        },
        duplicate_window: spec.duplicate_window,
        republish: spec
            .republish
            .map(|(source, destination)| stream::Republish {
                source: source.to_owned(),
                destination: destination.to_owned(),
                headers_only: false,
            }),
        num_replicas: replicas,
        ..Default::default()
    }
}
