//! A service that restarts is invisible to callers of its queries: the bus retries
//! them on "no responders" within its budget, asks once more when one is lost, and never
//! repeats a command.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use common::nats;
use tokio_util::sync::CancellationToken;
use verdict_bus::server::NatsServer;
use verdict_bus::{Bus, BusSettings, RequestError, ServiceHost};
use verdict_contracts::system::{self, Empty, VersionInfo};
use verdict_contracts::{Operation, ServiceName};

const SERVICE: ServiceName = ServiceName::Runs;
/// A command the test service would serve; nobody does, so it meets no responders.
const COMMAND: Operation<Empty, Empty> = Operation::new(SERVICE, "create_run");
/// A query answered by the test's own responders.
const QUERY: Operation<Empty, Empty> = Operation::query(SERVICE, "list_runs");

/// The request timeout of the tests that let requests time out.
const SHORT_TIMEOUT: Duration = Duration::from_millis(300);

async fn bus(server: &NatsServer, retry_budget: Duration) -> Bus {
    let settings = BusSettings {
        retry_budget,
        ..BusSettings::new(server.url(), "retry-test")
    };
    Bus::new(verdict_bus::connect(&settings).await.unwrap(), &settings)
}

/// Subscribes to `subject` as an instance that loses the first `lost` requests (as one
/// that unsubscribes or dies with a request on its way) and answers the later ones with
/// an empty object; returns how many requests reached it.
async fn responder_losing_the_first(
    server: &NatsServer,
    subject: String,
    lost: usize,
) -> Arc<AtomicUsize> {
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut requests = client.subscribe(subject).await.unwrap();
    subscriptions_in_effect(&client).await;
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            if counter.fetch_add(1, Ordering::SeqCst) >= lost {
                let reply = request.reply.expect("a request has a reply subject");
                client.publish(reply, "{}".into()).await.unwrap();
            }
        }
    });
    received
}

/// Returns once the server has taken every subscription `client` made: it handles a
/// connection's messages in order, so a message to itself comes back only after them.
async fn subscriptions_in_effect(client: &async_nats::Client) {
    let mut probe = client.subscribe("retry-test.probe").await.unwrap();
    client.publish("retry-test.probe", "".into()).await.unwrap();
    probe.next().await.unwrap();
}

/// Serves the version endpoint of [`SERVICE`] until the returned token is cancelled.
async fn start_service(server: &NatsServer) -> CancellationToken {
    let client = async_nats::connect(server.url()).await.unwrap();
    let host = ServiceHost::start(client, SERVICE, "9.9.9", None)
        .await
        .unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(host.serve(stop.clone()));
    stop
}

#[tokio::test]
async fn a_query_sent_while_its_service_is_down_is_answered_once_the_service_starts() {
    let (server, _dir) = nats().await;
    let bus = bus(&server, Duration::from_secs(5)).await;

    let query =
        tokio::spawn(async move { bus.request(&system::version(SERVICE), &Empty {}).await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let _service = start_service(&server).await;

    let answer: VersionInfo = query.await.unwrap().expect("answered within the budget");
    assert_eq!(answer.version, "9.9.9");
}

#[tokio::test]
async fn a_query_is_retried_across_a_restart_of_its_service() {
    let (server, _dir) = nats().await;
    let bus = bus(&server, Duration::from_secs(5)).await;
    let first = start_service(&server).await;
    bus.request(&system::version(SERVICE), &Empty {})
        .await
        .expect("answered while up");

    first.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let query = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.request(&system::version(SERVICE), &Empty {}).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _second = start_service(&server).await;

    query.await.unwrap().expect("answered by the new instance");
}

#[tokio::test]
async fn a_query_gives_up_with_no_responders_once_the_budget_is_spent() {
    let (server, _dir) = nats().await;
    let bus = bus(&server, Duration::from_millis(800)).await;

    let started = Instant::now();
    let err = bus
        .request(&system::version(SERVICE), &Empty {})
        .await
        .unwrap_err();

    assert!(matches!(err, RequestError::NoResponders { .. }), "{err}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

#[tokio::test]
async fn a_query_whose_request_is_lost_is_asked_once_more_and_answered() {
    let (server, _dir) = nats().await;
    // A budget shorter than the timeout: the second attempt does not depend on it.
    let bus = bus(&server, Duration::from_millis(100))
        .await
        .with_timeout(SHORT_TIMEOUT);
    let received = responder_losing_the_first(&server, QUERY.subject(), 1).await;

    let answer = bus.request(&QUERY, &Empty {}).await;

    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(received.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_query_lost_twice_fails_as_timed_out() {
    let (server, _dir) = nats().await;
    let bus = bus(&server, Duration::from_secs(5))
        .await
        .with_timeout(SHORT_TIMEOUT);
    let received = responder_losing_the_first(&server, QUERY.subject(), usize::MAX).await;

    let err = bus.request(&QUERY, &Empty {}).await.unwrap_err();

    assert!(matches!(err, RequestError::TimedOut { .. }), "{err}");
    assert_eq!(received.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_command_whose_request_is_lost_is_not_repeated() {
    let (server, _dir) = nats().await;
    let bus = bus(&server, Duration::from_secs(5))
        .await
        .with_timeout(SHORT_TIMEOUT);
    let received = responder_losing_the_first(&server, COMMAND.subject(), 1).await;

    let err = bus.request(&COMMAND, &Empty {}).await.unwrap_err();

    assert!(matches!(err, RequestError::TimedOut { .. }), "{err}");
    assert_eq!(received.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_command_is_not_repeated_when_nobody_answers() {
    let (server, _dir) = nats().await;
    let bus = bus(&server, Duration::from_secs(5)).await;

    let started = Instant::now();
    let err = bus.request(&COMMAND, &Empty {}).await.unwrap_err();

    assert!(matches!(err, RequestError::NoResponders { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_durable_publish_waits_for_its_stream_and_is_stored_once_however_often_sent() {
    let (server, _dir) = nats().await;
    let bus = bus(&server, Duration::from_secs(5)).await;
    let spec = &verdict_contracts::streams::INGEST;

    let publish = {
        let bus = bus.clone();
        tokio::spawn(async move {
            bus.publish_durable("verdict.ingest.p.r", "first".into(), "msg-1")
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    verdict_bus::streams::ensure(bus.client(), &[spec], 1)
        .await
        .unwrap();
    publish
        .await
        .unwrap()
        .expect("stored once the stream exists");
    bus.publish_durable("verdict.ingest.p.r", "again".into(), "msg-1")
        .await
        .expect("a resend is acknowledged");

    let mut stream = verdict_bus::jetstream(bus.client().clone())
        .get_stream(spec.name)
        .await
        .unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
}

#[tokio::test]
async fn a_durable_publish_into_a_full_stream_is_refused_at_once_as_full() {
    let (server, _dir) = nats().await;
    let bus = bus(&server, Duration::from_secs(5)).await;
    let spec = verdict_contracts::streams::INGEST.with_max_bytes(4096);
    verdict_bus::streams::ensure(bus.client(), &[&spec], 1)
        .await
        .unwrap();
    let payload = bytes::Bytes::from(vec![b'x'; 1000]);
    let mut refused = None;
    for n in 0..10 {
        let started = Instant::now();
        match bus
            .publish_durable("verdict.ingest.p.r", payload.clone(), &format!("m-{n}"))
            .await
        {
            Ok(()) => {}
            Err(err) => {
                refused = Some((err, started.elapsed()));
                break;
            }
        }
    }
    let (err, waited) = refused.expect("the stream filled up");
    assert!(
        matches!(err, RequestError::StreamFull { .. }),
        "refused as full: {err}"
    );
    assert!(waited < Duration::from_secs(1), "not retried: {waited:?}");
}
