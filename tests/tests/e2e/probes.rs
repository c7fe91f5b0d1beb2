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
async fn readyz_is_ok_once_every_service_answers() {
    let app = TestApp::spawn().await;
    let response = app
        .wait_for_status("/readyz", 200, Duration::from_secs(5))
        .await;
    let body: serde_json::Value = response.json().await.unwrap();
    for name in ["nats", "auth", "runs", "artifacts", "realtime"] {
        assert_eq!(body["checks"][name], "ok", "{body}");
    }
}

#[tokio::test]
async fn readyz_names_a_stopped_service_and_recovers_when_it_restarts() {
    let mut app = TestApp::spawn().await;
    app.wait_for_status("/readyz", 200, Duration::from_secs(5))
        .await;

    app.stop(Component::Service(ServiceName::Runs)).await;
    let response = app
        .wait_for_status("/readyz", 503, Duration::from_secs(5))
        .await;
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["unavailable"], serde_json::json!(["runs"]));
    assert!(problem["detail"].as_str().unwrap().contains("runs"));

    app.start(Component::Service(ServiceName::Runs)).await;
    app.wait_for_status("/readyz", 200, Duration::from_secs(5))
        .await;
}
