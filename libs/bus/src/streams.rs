//! Idempotent creation of the JetStream streams defined in `verdict_contracts::streams`.

use async_nats::jetstream::kv;
use async_nats::jetstream::{self, stream};
use async_nats::Client;
use verdict_contracts::streams::{BucketSpec, Storage, StreamSpec};

use crate::BusError;

/// Creates each stream, or updates it to `spec` when it exists with other limits.
/// Safe to call from every process at every start.
pub async fn ensure(
    client: &Client,
    specs: &[&StreamSpec],
    replicas: usize,
) -> Result<(), BusError> {
    let js = jetstream::new(client.clone());
    for spec in specs {
        js.create_or_update_stream(config(spec, replicas))
            .await
            .map_err(|err| BusError::Stream {
                stream: spec.name.to_owned(),
                reason: err.to_string(),
            })?;
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
    js.create_or_update_key_value(kv::Config {
        bucket: spec.name.to_owned(),
        max_age: spec.max_age,
        max_bytes: spec.max_bytes,
        history: 1,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|err| BusError::Stream {
        stream: spec.name.to_owned(),
        reason: err.to_string(),
    })
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
    let failed = |err: &dyn std::fmt::Display| BusError::Stream {
        stream: spec.name.to_owned(),
        reason: format!("consumer {name}: {err}"),
    };
    let js = jetstream::new(client.clone());
    let stream = js.get_stream(spec.name).await.map_err(|err| failed(&err))?;
    let config = jetstream::consumer::pull::Config {
        durable_name: Some(name.to_owned()),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait,
        max_ack_pending: 20_000,
        filter_subject: filter.unwrap_or_default(),
        ..Default::default()
    };
    stream
        .create_consumer(config)
        .await
        .map_err(|err| failed(&err))
}

fn config(spec: &StreamSpec, replicas: usize) -> stream::Config {
    stream::Config {
        name: spec.name.to_owned(),
        subjects: spec.subjects.iter().map(|s| (*s).to_owned()).collect(),
        max_age: spec.max_age,
        max_bytes: spec.max_bytes,
        storage: match spec.storage {
            Storage::File => stream::StorageType::File,
            Storage::Memory => stream::StorageType::Memory,
        },
        duplicate_window: spec.duplicate_window,
        num_replicas: replicas,
        // Realtime reads single frames by subject (last, next after a sequence).
        allow_direct: true,
        ..Default::default()
    }
}
