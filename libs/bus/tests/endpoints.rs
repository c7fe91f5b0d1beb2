//! The one way to register a bus endpoint (`ServiceHost::with_state`): handlers share
//! the service's state, and those acting for a principal never run without one.

mod common;

use common::nats;
use tokio_util::sync::CancellationToken;
use verdict_bus::{Bus, BusError, BusSettings, RequestError, ServiceHost};
use verdict_contracts::auth::Principal;
use verdict_contracts::ids::{SessionId, UserId};
use verdict_contracts::system::Empty;
use verdict_contracts::{ErrorCode, Operation, ServiceError, ServiceName};

/// Answers the caller's user id, for a principal.
const WHO_AM_I: Operation<Empty, String> = Operation::query(ServiceName::Auth, "who_am_i");
/// Answers the service's state, for another service.
const GREETING: Operation<Empty, String> = Operation::service_query(ServiceName::Auth, "greeting");

fn user_id(principal: &Principal) -> String {
    match principal {
        Principal::User { user_id, .. } => user_id.to_string(),
        Principal::ApiToken { token_id, .. } => token_id.to_string(),
    }
}

async fn serve(server: &verdict_bus::server::NatsServer) -> (Bus, CancellationToken) {
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut host = ServiceHost::start(client, ServiceName::Auth, "1.0.0", None)
        .await
        .unwrap();
    let mut endpoints = host.with_state("hello".to_owned());
    endpoints
        .for_principal(WHO_AM_I, |_, principal, _: Empty| async move {
            Ok::<_, ServiceError>(user_id(&principal))
        })
        .await
        .unwrap();
    endpoints
        .for_service(GREETING, |greeting, _: Empty| async move {
            Ok::<_, ServiceError>(greeting)
        })
        .await
        .unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(host.serve(stop.clone()));
    let settings = BusSettings::new(server.url(), "endpoints-test");
    let bus = Bus::new(verdict_bus::connect(&settings).await.unwrap(), &settings);
    (bus, stop)
}

#[tokio::test]
async fn a_principal_endpoint_answers_for_the_principal_it_is_sent_with() {
    let (server, _dir) = nats().await;
    let (bus, _stop) = serve(&server).await;
    let user_id = UserId::generate();
    let principal = Principal::User {
        user_id,
        session_id: SessionId::generate(),
    };
    assert_eq!(
        bus.request_as(&WHO_AM_I, &Empty {}, &principal)
            .await
            .unwrap(),
        user_id.to_string()
    );
}

#[tokio::test]
async fn a_principal_endpoint_refuses_a_request_without_a_principal() {
    let (server, _dir) = nats().await;
    let (bus, _stop) = serve(&server).await;
    match bus.request(&WHO_AM_I, &Empty {}).await {
        Err(RequestError::Service(error)) => assert_eq!(error.code, ErrorCode::Unauthorized),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_service_endpoint_gets_the_shared_state() {
    let (server, _dir) = nats().await;
    let (bus, _stop) = serve(&server).await;
    assert_eq!(bus.request(&GREETING, &Empty {}).await.unwrap(), "hello");
}

#[tokio::test]
async fn an_operation_only_services_send_cannot_act_for_a_principal() {
    let (server, _dir) = nats().await;
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut host = ServiceHost::start(client, ServiceName::Auth, "1.0.0", None)
        .await
        .unwrap();
    let registered = host
        .with_state(())
        .for_principal(GREETING, |(), _, _: Empty| async move {
            Ok::<_, ServiceError>(String::new())
        })
        .await;
    assert!(matches!(registered, Err(BusError::Register { .. })));
}
