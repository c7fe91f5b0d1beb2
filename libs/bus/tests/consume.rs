//! The work-queue consumer loop against a real nats-server: messages are settled by the
//! handler's verdict, and the loop pulls again when its consumer or stream goes away.

mod common;

use std::future::Future;
use std::time::Duration;

use common::nats;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use verdict_bus::consume::{consume, Delivery, Verdict, WorkQueue};
use verdict_bus::server::NatsServer;
use verdict_contracts::streams::{Discard, Retention, Storage, StreamSpec};

const STREAM: StreamSpec = StreamSpec {
    name: "TEST_WORK",
    subjects: &["test.work.>"],
    max_age: Duration::ZERO,
    max_bytes: 1 << 20,
    retention: Retention::WorkQueue,
    discard: Discard::New,
    keepers: &[],
    storage: Storage::File,
    duplicate_window: Duration::from_secs(1),
    republish: None,
};
/// A stream that keeps its history, as the run events are kept.
const HISTORY: StreamSpec = StreamSpec {
    name: "TEST_HISTORY",
    subjects: &["test.history.>"],
    max_age: Duration::from_secs(3600),
    retention: Retention::Limits,
    discard: Discard::Old,
    ..STREAM
};
const CONSUMER: &str = "test-worker";
/// Longer than any wait below: a message handled twice was retried, not redelivered.
const ACK_WAIT: Duration = Duration::from_secs(30);
const PATIENCE: Duration = Duration::from_secs(15);

fn queue() -> WorkQueue {
    WorkQueue {
        stream: STREAM,
        consumer: CONSUMER,
        filter: None,
        ack_wait: ACK_WAIT,
        max_batch: 8,
        rounds_in_flight: 1,
        replicas: 1,
    }
}

/// Runs the consumer loop with `decide` as the verdict of each delivery; every delivery
/// is also sent to the returned channel.
fn start(
    server: &NatsServer,
    decide: fn(&Delivery) -> Verdict,
) -> (mpsc::UnboundedReceiver<Delivery>, CancellationToken) {
    start_on(server, queue(), decide)
}

/// [`start`] on another queue.
fn start_on(
    server: &NatsServer,
    queue: WorkQueue,
    decide: fn(&Delivery) -> Verdict,
) -> (mpsc::UnboundedReceiver<Delivery>, CancellationToken) {
    let (seen, deliveries) = mpsc::unbounded_channel();
    let stop = spawn_consumer(server, queue, move |batch: Vec<Delivery>| {
        let verdicts = batch.iter().map(decide).collect();
        for delivery in batch {
            let _ = seen.send(delivery);
        }
        async move { verdicts }
    });
    (deliveries, stop)
}

/// Runs the consumer loop over `queue` with `handle` until the returned token is
/// cancelled.
fn spawn_consumer<H, Fut>(server: &NatsServer, queue: WorkQueue, handle: H) -> CancellationToken
where
    H: FnMut(Vec<Delivery>) -> Fut + Send + 'static,
    Fut: Future<Output = Vec<Verdict>> + Send + 'static,
{
    let stop = CancellationToken::new();
    let (url, token) = (server.url().to_owned(), stop.clone());
    tokio::spawn(async move {
        let client = async_nats::connect(url).await.unwrap();
        consume(&client, queue, handle, token).await
    });
    stop
}

async fn publish(server: &NatsServer, subject: &str) {
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    // The stream may be on its way back (created again by the consumer loop).
    loop {
        match js.publish(subject.to_owned(), "x".into()).await {
            Ok(ack) => match ack.await {
                Ok(_) => return,
                Err(err) if tokio::time::Instant::now() > deadline => panic!("{err}"),
                Err(_) => {}
            },
            Err(err) if tokio::time::Instant::now() > deadline => panic!("{err}"),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn next(deliveries: &mut mpsc::UnboundedReceiver<Delivery>) -> Delivery {
    tokio::time::timeout(PATIENCE, deliveries.recv())
        .await
        .expect("a delivery in time")
        .expect("the consumer runs")
}

async fn stream_messages(server: &NatsServer) -> u64 {
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut stream = async_nats::jetstream::new(client)
        .get_stream(STREAM.name)
        .await
        .unwrap();
    stream.info().await.unwrap().state.messages
}

fn done(_: &Delivery) -> Verdict {
    Verdict::Done
}

#[tokio::test]
async fn a_handled_message_is_acknowledged_and_leaves_the_queue() {
    let (server, _dir) = nats().await;
    let (mut deliveries, stop) = start(&server, done);
    publish(&server, "test.work.a").await;
    assert_eq!(next(&mut deliveries).await.subject, "test.work.a");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stream_messages(&server).await, 0);
    stop.cancel();
}

#[tokio::test]
async fn a_message_to_retry_is_delivered_again_and_a_rejected_one_is_not() {
    let (server, _dir) = nats().await;
    let (mut deliveries, stop) = start(&server, |delivery| {
        match (delivery.subject.as_str(), delivery.delivered) {
            ("test.work.retry", 1) => Verdict::Retry(Duration::from_millis(100)),
            ("test.work.reject", _) => Verdict::Reject,
            _ => Verdict::Done,
        }
    });
    publish(&server, "test.work.reject").await;
    publish(&server, "test.work.retry").await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let delivery = next(&mut deliveries).await;
        seen.push((delivery.subject, delivery.delivered));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("test.work.reject".to_owned(), 1),
            ("test.work.retry".to_owned(), 1),
            ("test.work.retry".to_owned(), 2),
        ]
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(1), deliveries.recv())
            .await
            .is_err(),
        "nothing more is delivered"
    );
    assert_eq!(stream_messages(&server).await, 0);
    stop.cancel();
}

#[tokio::test]
async fn the_loop_pulls_again_after_its_consumer_is_deleted() {
    let (server, _dir) = nats().await;
    let (mut deliveries, stop) = start(&server, done);
    publish(&server, "test.work.before").await;
    assert_eq!(next(&mut deliveries).await.subject, "test.work.before");

    let client = async_nats::connect(server.url()).await.unwrap();
    let stream = async_nats::jetstream::new(client)
        .get_stream(STREAM.name)
        .await
        .unwrap();
    stream.delete_consumer(CONSUMER).await.unwrap();
    publish(&server, "test.work.after").await;

    assert_eq!(next(&mut deliveries).await.subject, "test.work.after");
    stop.cancel();
}

#[tokio::test]
async fn the_loop_pulls_again_after_its_stream_is_deleted_and_created_again() {
    let (server, _dir) = nats().await;
    let (mut deliveries, stop) = start(&server, done);
    publish(&server, "test.work.before").await;
    assert_eq!(next(&mut deliveries).await.subject, "test.work.before");

    let client = async_nats::connect(server.url()).await.unwrap();
    async_nats::jetstream::new(client)
        .delete_stream(STREAM.name)
        .await
        .unwrap();
    // Publishing meets no responders until the loop has created the stream again.
    publish(&server, "test.work.after").await;

    assert_eq!(next(&mut deliveries).await.subject, "test.work.after");
    stop.cancel();
}

#[tokio::test]
async fn a_new_consumer_of_a_stream_kept_by_limits_starts_with_what_comes_next() {
    let (server, _dir) = nats().await;
    let client = async_nats::connect(server.url()).await.unwrap();
    verdict_bus::streams::ensure(&client, &[&HISTORY], 1)
        .await
        .unwrap();
    publish(&server, "test.history.before").await;

    let (mut deliveries, _stop) = start_on(
        &server,
        WorkQueue {
            stream: HISTORY,
            ..queue()
        },
        done,
    );
    let stream = async_nats::jetstream::new(client)
        .get_stream(HISTORY.name)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(CONSUMER)
        .await
        .is_err()
    {
        assert!(tokio::time::Instant::now() < deadline, "no consumer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publish(&server, "test.history.after").await;

    assert_eq!(next(&mut deliveries).await.subject, "test.history.after");
}

/// Runs the consumer loop over `queue` with a handler that holds each round until the
/// test lets it go; every round's subjects are sent to the returned channel as it is
/// handed over.
fn start_held(
    server: &NatsServer,
    queue: WorkQueue,
) -> (mpsc::UnboundedReceiver<HeldRound>, CancellationToken) {
    let (handed, rounds) = mpsc::unbounded_channel();
    let stop = spawn_consumer(server, queue, move |batch: Vec<Delivery>| {
        let (release, released) = tokio::sync::oneshot::channel();
        let subjects = batch.iter().map(|d| d.subject.clone()).collect();
        let _ = handed.send((subjects, release));
        async move {
            let _ = released.await;
            vec![Verdict::Done; batch.len()]
        }
    });
    (rounds, stop)
}

type HeldRound = (Vec<String>, tokio::sync::oneshot::Sender<()>);

async fn next_round(rounds: &mut mpsc::UnboundedReceiver<HeldRound>) -> HeldRound {
    tokio::time::timeout(PATIENCE, rounds.recv())
        .await
        .expect("a round in time")
        .expect("the consumer runs")
}

#[tokio::test]
async fn with_two_rounds_in_flight_the_next_round_is_handed_over_while_one_is_handled() {
    let (server, _dir) = nats().await;
    let one_at_a_time = WorkQueue {
        max_batch: 1,
        rounds_in_flight: 2,
        ..queue()
    };
    let (mut rounds, stop) = start_held(&server, one_at_a_time);
    publish(&server, "test.work.first").await;
    publish(&server, "test.work.second").await;
    publish(&server, "test.work.third").await;

    let (first, release_first) = next_round(&mut rounds).await;
    let (second, release_second) = next_round(&mut rounds).await;
    assert_eq!(
        (first, second),
        (
            vec!["test.work.first".to_owned()],
            vec!["test.work.second".to_owned()]
        )
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rounds.recv())
            .await
            .is_err(),
        "a third round waits until one of the two is settled"
    );
    release_first.send(()).unwrap();
    let (third, release_third) = next_round(&mut rounds).await;
    assert_eq!(third, ["test.work.third"]);
    release_second.send(()).unwrap();
    release_third.send(()).unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while stream_messages(&server).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "every round is acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
}

#[tokio::test]
async fn with_one_round_in_flight_the_next_round_waits_until_the_first_is_settled() {
    let (server, _dir) = nats().await;
    let one_at_a_time = WorkQueue {
        max_batch: 1,
        ..queue()
    };
    let (mut rounds, stop) = start_held(&server, one_at_a_time);
    publish(&server, "test.work.first").await;
    publish(&server, "test.work.second").await;

    let (first, release_first) = next_round(&mut rounds).await;
    assert_eq!(first, ["test.work.first"]);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rounds.recv())
            .await
            .is_err(),
        "the second round waits"
    );
    release_first.send(()).unwrap();
    let (second, _release_second) = next_round(&mut rounds).await;
    assert_eq!(second, ["test.work.second"]);
    stop.cancel();
}
