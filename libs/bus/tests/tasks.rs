//! The rule for a service's background tasks, with a service served on a real
//! nats-server: a critical task's end stops the service, any other task's is logged.

mod common;

use std::time::Duration;

use common::nats;
use tokio_util::sync::CancellationToken;
use verdict_bus::server::NatsServer;
use verdict_bus::tasks::{TaskEnd, Tasks};
use verdict_bus::{BusError, ServiceHost};
use verdict_contracts::ServiceName;

const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("the queue went away")]
struct QueueGone;

async fn host(server: &NatsServer) -> ServiceHost {
    let client = async_nats::connect(server.url()).await.unwrap();
    ServiceHost::start(client, ServiceName::Runs, "9.9.9", None)
        .await
        .unwrap()
}

async fn panics() {
    panic!("a bug");
}

async fn until_cancelled(work: CancellationToken) {
    work.cancelled().await;
}

#[tokio::test]
async fn a_critical_task_that_fails_stops_the_service_naming_the_task() {
    let (server, _dir) = nats().await;
    let host = host(&server).await;
    let (stop, work) = (CancellationToken::new(), CancellationToken::new());
    let mut tasks = Tasks::new(stop.clone());
    tasks.critical("queue consumer", async { Err::<(), _>(QueueGone) });
    tasks.logged("sweeper", until_cancelled(work.clone()));

    let (served, ended) = tokio::time::timeout(
        PATIENCE,
        tasks.run_alongside(host.serve(stop.clone()), work.clone()),
    )
    .await
    .expect("the service stops by itself");

    served.unwrap();
    assert!(stop.is_cancelled() && work.is_cancelled());
    match ended {
        Err(BusError::TaskEnded {
            task: "queue consumer",
            source: TaskEnd::Failed(source),
        }) => assert_eq!(source.to_string(), "the queue went away"),
        other => panic!("expected the consumer's failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_critical_task_that_panics_stops_the_service() {
    let (server, _dir) = nats().await;
    let host = host(&server).await;
    let (stop, work) = (CancellationToken::new(), CancellationToken::new());
    let mut tasks = Tasks::new(stop.clone());
    tasks.critical("sequencer", panics());

    let (_, ended) = tokio::time::timeout(PATIENCE, tasks.run_alongside(host.serve(stop), work))
        .await
        .expect("the service stops by itself");

    assert!(matches!(
        ended,
        Err(BusError::TaskEnded {
            task: "sequencer",
            source: TaskEnd::Aborted(_)
        })
    ));
}

#[tokio::test]
async fn a_failing_background_task_is_logged_and_the_service_goes_on() {
    let (server, _dir) = nats().await;
    let host = host(&server).await;
    let (stop, work) = (CancellationToken::new(), CancellationToken::new());
    let mut tasks = Tasks::new(stop.clone());
    tasks.logged("sweeper", async { Err::<(), _>(QueueGone) });
    tasks.critical("queue consumer", until_cancelled(work.clone()));
    let service = tokio::spawn(tasks.run_alongside(host.serve(stop.clone()), work.clone()));

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!service.is_finished(), "the service still serves");
    stop.cancel();
    let (served, ended) = tokio::time::timeout(PATIENCE, service)
        .await
        .expect("the service stops when asked")
        .unwrap();

    served.unwrap();
    ended.unwrap();
    assert!(work.is_cancelled(), "the tasks were told to stop");
}
