//! What any NATS client sees of Verdict's services.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use verdict_contracts::streams;
use verdict_testkit::TestApp;

#[tokio::test]
async fn srv_ping_from_a_plain_client_sees_every_service_and_the_gateway() {
    let app = TestApp::spawn().await;
    let client = app.nats.client().await;

    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply("$SRV.PING", inbox, "".into())
        .await
        .unwrap();
    let mut names = BTreeSet::new();
    while let Ok(Some(reply)) =
        tokio::time::timeout(Duration::from_millis(500), replies.next()).await
    {
        let pong: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(pong["type"], "io.nats.micro.v1.ping_response");
        names.insert(pong["name"].as_str().unwrap().to_owned());
    }
    let expected: BTreeSet<String> = [
        "verdict-auth",
        "verdict-runs",
        "verdict-artifacts",
        "verdict-realtime",
        "verdict-notify",
        "verdict-gateway",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn every_service_reports_its_version_through_the_gateway() {
    let app = TestApp::spawn().await;
    let versions: serde_json::Value = app.get("/api/v1/version").await.json().await.unwrap();
    for service in ["auth", "runs", "artifacts", "realtime", "notify"] {
        assert_eq!(
            versions["services"][service],
            env!("CARGO_PKG_VERSION"),
            "{versions}"
        );
    }
}

#[tokio::test]
async fn the_gateway_creates_the_jetstream_streams() {
    let app = TestApp::spawn().await;
    let js = async_nats::jetstream::new(app.nats.client().await);
    for spec in streams::ALL {
        let mut stream = js
            .get_stream(spec.name)
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", spec.name));
        let info = stream.info().await.unwrap();
        assert!(
            info.config.max_bytes > 0,
            "{} is bounded in bytes",
            spec.name
        );
        match spec.discard {
            // Data held nowhere else is refused when full, never dropped for its age.
            streams::Discard::New => assert!(info.config.max_age.is_zero(), "{}", spec.name),
            streams::Discard::Old => assert!(!info.config.max_age.is_zero(), "{}", spec.name),
        }
    }
}
