//! Liveness and readiness as an orchestrator sees them.

use std::time::Duration;

use verdict_contracts::ServiceName;
use verdict_testkit::{Component, TestApp};

#[tokio::test]
async fn healthz_answers_while_the_process_runs() {
    let app = TestApp::spawn().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn readyz_is_ok_while_nats_is_connected_and_jetstream_answers() {
    let app = TestApp::spawn().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["checks"],
        serde_json::json!({"nats": "ok", "jetstream": "ok"})
    );
}

#[tokio::test]
async fn readyz_stays_ok_while_backend_services_are_stopped() {
    let mut app = TestApp::spawn().await;
    for service in [ServiceName::Artifacts, ServiceName::Auth, ServiceName::Runs] {
        app.stop(Component::Service(service)).await;
        assert_eq!(app.get("/readyz").await.status(), 200, "{service} stopped");
    }
}

#[tokio::test]
async fn readyz_names_jetstream_once_it_has_not_answered_for_the_retry_budget() {
    let mut app = TestApp::spawn_with(&[("VERDICT_BUS_RETRY_BUDGET", "3s")]).await;
    // Without the ingest stream (and runs, which would create it again), JetStream
    // cannot take a result batch.
    app.stop(Component::Service(ServiceName::Runs)).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    let js = async_nats::jetstream::new(app.nats.client().await);
    js.delete_stream(verdict_contracts::streams::INGEST.name)
        .await
        .unwrap();

    let during_the_grace = app.get("/readyz").await;
    assert_eq!(during_the_grace.status(), 200);
    let response = app
        .wait_for_status("/readyz", 503, Duration::from_secs(10))
        .await;
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["unavailable"], serde_json::json!(["jetstream"]));
}

#[tokio::test]
async fn readyz_names_nats_when_the_gateway_has_lost_it() {
    let mut app = TestApp::spawn().await;
    app.nats.kill().await;
    let response = app
        .wait_for_status("/readyz", 503, Duration::from_secs(5))
        .await;
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        problem["unavailable"],
        serde_json::json!(["nats", "jetstream"])
    );
    assert!(problem["detail"].as_str().unwrap().contains("nats"));
}
