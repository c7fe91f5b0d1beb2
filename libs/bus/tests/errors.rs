//! A service's error reaches its caller whole, whatever its message holds: the message
//! travels in the reply's body, and the standard error headers stay single-line.

mod common;

use common::nats;
use tokio_util::sync::CancellationToken;
use verdict_bus::server::NatsServer;
use verdict_bus::{Bus, BusSettings, RequestError, ServiceHost};
use verdict_contracts::system::Empty;
use verdict_contracts::{headers, Operation, ServiceError, ServiceName};

const REFUSE: Operation<Empty, Empty> = Operation::query(ServiceName::Runs, "refuse");

/// A service whose one endpoint refuses every request with `error`.
async fn refusing_service(server: &NatsServer, error: ServiceError) -> CancellationToken {
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut host = ServiceHost::start(client, ServiceName::Runs, "1.0.0", None)
        .await
        .unwrap();
    host.with_state(error)
        .for_service(
            REFUSE,
            |error, _: Empty| async move { Err::<Empty, _>(error) },
        )
        .await
        .unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(host.serve(stop.clone()));
    stop
}

fn header_breaking_error() -> ServiceError {
    ServiceError::bad_request(format!("attributes.a\r\nb: {}", "v".repeat(2000)))
}

#[tokio::test]
async fn an_error_whose_message_could_not_be_a_header_reaches_the_caller_whole() {
    let (server, _dir) = nats().await;
    let _service = refusing_service(&server, header_breaking_error()).await;
    let settings = BusSettings::new(server.url(), "errors-test");
    let bus = Bus::new(verdict_bus::connect(&settings).await.unwrap(), &settings);

    match bus.request(&REFUSE, &Empty {}).await {
        Err(RequestError::Service(error)) => assert_eq!(error, header_breaking_error()),
        other => panic!("expected the service's error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_error_reply_carries_the_standard_headers_for_other_nats_tools() {
    let (server, _dir) = nats().await;
    let _service = refusing_service(&server, header_breaking_error()).await;
    let client = async_nats::connect(server.url()).await.unwrap();

    let reply = client.request(REFUSE.subject(), "{}".into()).await.unwrap();
    let reply_headers = reply.headers.expect("error headers");
    assert_eq!(
        reply_headers
            .get(headers::SERVICE_ERROR_CODE)
            .unwrap()
            .as_str(),
        "400"
    );
    let summary = reply_headers.get(headers::SERVICE_ERROR).unwrap().as_str();
    assert!(summary.starts_with("attributes.a  b: vv"), "{summary}");
    assert!(summary.len() <= 256);
}
