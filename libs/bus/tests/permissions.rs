//! The bus permissions of `bus_access`, enforced by a real nats-server: only gateways
//! send the API's requests, nobody reads another user's replies or requests, and
//! nobody gets in without a password.

mod common;

use std::time::Duration;

use futures::StreamExt;
use verdict_bus::server::{BusPasswords, NatsServer};
use verdict_contracts::auth;
use verdict_contracts::bus_access::BusUser;
use verdict_contracts::ServiceName;

const RUNS: BusUser = BusUser::Service(ServiceName::Runs);
const AUTH: BusUser = BusUser::Service(ServiceName::Auth);

async fn connect(
    server: &NatsServer,
    passwords: &BusPasswords,
    user: BusUser,
) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(
        user.name().to_owned(),
        passwords.password(user).to_owned(),
    )
    .custom_inbox_prefix(user.inbox_prefix())
    .connect(server.url())
    .await
    .expect("signs in")
}

/// Whether a message `from` publishes on `subject` reaches a subscriber `to`.
async fn delivered(
    server: &NatsServer,
    passwords: &BusPasswords,
    from: BusUser,
    to: BusUser,
    subject: &str,
) -> bool {
    let receiver = connect(server, passwords, to).await;
    let mut subscription = receiver.subscribe(subject.to_owned()).await.unwrap();
    receiver.flush().await.unwrap();
    let sender = connect(server, passwords, from).await;
    let _ = sender.publish(subject.to_owned(), "x".into()).await;
    let _ = sender.flush().await;
    tokio::time::timeout(Duration::from_millis(500), subscription.next())
        .await
        .ok()
        .flatten()
        .is_some()
}

#[tokio::test]
async fn only_a_gateway_may_send_a_request_that_acts_for_a_principal() {
    let passwords = BusPasswords::generate();
    let (server, _dir) = common::nats_with(Some(passwords.clone())).await;
    let subject = auth::CREATE_TOKEN.subject();
    assert!(delivered(&server, &passwords, BusUser::Gateway, AUTH, &subject).await);
    assert!(!delivered(&server, &passwords, RUNS, AUTH, &subject).await);
}

#[tokio::test]
async fn a_service_may_ask_another_for_what_it_needs() {
    let passwords = BusPasswords::generate();
    let (server, _dir) = common::nats_with(Some(passwords.clone())).await;
    let subject = auth::AUTHORIZE.subject();
    assert!(delivered(&server, &passwords, RUNS, AUTH, &subject).await);
}

#[tokio::test]
async fn nobody_reads_another_users_replies_or_a_services_requests() {
    let passwords = BusPasswords::generate();
    let (server, _dir) = common::nats_with(Some(passwords.clone())).await;
    let gateway_reply = format!("{}.abc", BusUser::Gateway.inbox_prefix());
    assert!(!delivered(&server, &passwords, BusUser::Admin, RUNS, &gateway_reply).await);
    assert!(!delivered(&server, &passwords, BusUser::Admin, RUNS, "_INBOX.abc").await);
    assert!(
        !delivered(
            &server,
            &passwords,
            BusUser::Gateway,
            RUNS,
            &auth::LOGIN.subject()
        )
        .await
    );
}

#[tokio::test]
async fn nobody_signs_in_without_a_password() {
    let passwords = BusPasswords::generate();
    let (server, _dir) = common::nats_with(Some(passwords)).await;
    let anonymous = async_nats::connect(server.url()).await;
    assert!(anonymous.is_err(), "an anonymous client got in");
}
