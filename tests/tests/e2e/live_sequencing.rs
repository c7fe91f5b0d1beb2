//! The realtime sequencer on a real nats-server: replicas racing over the same events
//! agree on every `seq`, and a restarted one resumes where the log ends.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull::OrderedConfig;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use verdict_contracts::events::{subject, EventKind};
use verdict_contracts::live::{Channel, SEQ_HEADER};
use verdict_contracts::streams;
use verdict_testkit::TestNats;

/// The project and run every event here is about.
const PROJECT: &str = "0192a24d-0000-7000-8000-0000000000ff";
const RUN: &str = "0192a24d-0000-7000-8000-000000000001";

fn project() -> verdict_contracts::ids::ProjectId {
    PROJECT.parse().unwrap()
}

fn run() -> verdict_contracts::ids::RunId {
    RUN.parse().unwrap()
}

struct Replica {
    stop: CancellationToken,
    task: JoinHandle<Result<(), verdict_realtime::Error>>,
}

impl Replica {
    fn start(nats: &TestNats) -> Self {
        let env = verdict_settings::Env::from_pairs([("NATS_URL", nats.url())]);
        let settings = verdict_realtime::Settings::from_env(&env).unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(verdict_realtime::run(settings, stop.clone()));
        Self { stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// A nats-server with Verdict's streams, as any service creates them at start.
async fn bus() -> TestNats {
    let nats = TestNats::start().await;
    verdict_bus::streams::ensure(&nats.client().await, &streams::ALL, 1)
        .await
        .unwrap();
    nats
}

/// Publishes `test.finished` events for tests `first..first + count` of run [`RUN`].
async fn publish_tests(nats: &TestNats, first: usize, count: usize) {
    let js = async_nats::jetstream::new(nats.client().await);
    for i in first..first + count {
        let event = json!({
            "kind": "test.finished", "project_id": PROJECT, "run_id": RUN,
            "tests": [{ "id": format!("t{i}"), "test_key": "k", "suite": null, "name": "n",
                        "status": "passed", "attempt": 1, "duration_ms": null }],
        });
        js.publish(
            subject(project(), run(), EventKind::TestFinished),
            event.to_string().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
}

/// The run channel's frames as stored: `(seq, test id)` in stream order, once `count`
/// are there.
async fn frames(nats: &TestNats, count: usize) -> Vec<(u64, String)> {
    let js = async_nats::jetstream::new(nats.client().await);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stream = js.get_stream(streams::LIVE.name).await.unwrap();
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: Channel::Run(run()).subject(),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let mut frames = Vec::new();
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(300), messages.next()).await
        {
            let message = message.unwrap();
            let seq = message.headers.as_ref().unwrap().get(SEQ_HEADER).unwrap();
            let frame: Value = serde_json::from_slice(&message.payload).unwrap();
            assert_eq!(frame["seq"].as_u64(), seq.as_str().parse().ok());
            let id = frame["event"]["tests"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            frames.push((frame["seq"].as_u64().unwrap(), id));
        }
        if frames.len() >= count {
            return frames;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {count} frames",
            frames.len()
        );
    }
}

fn expected(count: usize) -> Vec<(u64, String)> {
    (0..count)
        .map(|i| (i as u64 + 1, format!("t{i}")))
        .collect()
}

#[tokio::test]
async fn replicas_racing_over_the_same_events_agree_on_every_seq() {
    let nats = bus().await;
    let replicas = [
        Replica::start(&nats),
        Replica::start(&nats),
        Replica::start(&nats),
    ];
    publish_tests(&nats, 0, 300).await;
    assert_eq!(frames(&nats, 300).await, expected(300));
    for replica in replicas {
        replica.stop().await;
    }
}

#[tokio::test]
async fn a_restarted_sequencer_resumes_without_repeating_or_missing_events() {
    let nats = bus().await;
    let replica = Replica::start(&nats);
    publish_tests(&nats, 0, 50).await;
    frames(&nats, 50).await;
    replica.stop().await;
    publish_tests(&nats, 50, 50).await;
    let replica = Replica::start(&nats);
    assert_eq!(frames(&nats, 100).await, expected(100));
    replica.stop().await;
}

#[tokio::test]
async fn a_frame_too_large_for_the_bus_is_skipped_and_the_channel_goes_on() {
    let nats = bus().await;
    let client = nats.client().await;
    let max_payload = client.server_info().max_payload;
    let event = |name: &str| {
        json!({
            "kind": "test.finished", "project_id": PROJECT, "run_id": RUN,
            "tests": [{ "id": "huge", "test_key": "k", "suite": null, "name": name,
                        "status": "passed", "attempt": 1, "duration_ms": null }],
        })
        .to_string()
    };
    // The events stream takes it; its frame (the event in an envelope, with headers)
    // is larger than the server carries.
    let huge = event(&"n".repeat(max_payload - 16 - event("").len()));
    assert!(huge.len() < max_payload);
    async_nats::jetstream::new(client)
        .publish(
            subject(project(), run(), EventKind::TestFinished),
            huge.into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let replica = Replica::start(&nats);
    publish_tests(&nats, 0, 3).await;

    assert_eq!(frames(&nats, 3).await, expected(3));
    replica.stop().await;
}
