//! `GET /api/v1/status`: every service and its instances on the bus, for administrators.

use serde_json::Value;
use verdict_contracts::ServiceName;
use verdict_testkit::{Component, TestApp};

const KINDS: [&str; 6] = ["auth", "runs", "artifacts", "realtime", "notify", "gateway"];

/// The status as an administrator sees it.
async fn status(app: &TestApp, token: &str) -> Value {
    let response = app.get_as(token, "/api/v1/status").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn service<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|service| service["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing from {status}"))
}

#[tokio::test]
async fn status_lists_every_service_with_its_instance_and_version() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let status = status(&app, &admin).await;
    assert_eq!(status["status"], "ok", "{status}");
    let names: Vec<&str> = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|service| service["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, KINDS);
    for name in KINDS {
        let service = service(&status, name);
        assert_eq!(service["health"], "up", "{service}");
        let instances = service["instances"].as_array().unwrap();
        assert_eq!(instances.len(), 1, "{service}");
        assert!(!instances[0]["id"].as_str().unwrap().is_empty());
        assert_eq!(instances[0]["version"], verdict_gateway::VERSION);
        assert_eq!(
            service["versions"],
            serde_json::json!([verdict_gateway::VERSION])
        );
    }
}

#[tokio::test]
async fn a_stopped_service_is_down_with_no_instance_and_back_once_it_returns() {
    let mut app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let artifacts = Component::Service(ServiceName::Artifacts);
    let before = status(&app, &admin).await;
    app.stop(artifacts).await;

    let stopped = status(&app, &admin).await;
    assert_eq!(stopped["status"], "degraded");
    let down = service(&stopped, "artifacts");
    assert_eq!(down["health"], "down");
    assert_eq!(down["instances"], serde_json::json!([]));
    assert_eq!(service(&stopped, "runs")["health"], "up");

    app.start(artifacts).await;
    let back = status(&app, &admin).await;
    assert_eq!(back["status"], "ok");
    // A new process is a new instance.
    assert_ne!(
        service(&back, "artifacts")["instances"][0]["id"],
        service(&before, "artifacts")["instances"][0]["id"]
    );
}

#[tokio::test]
async fn every_gateway_is_an_instance_of_its_own() {
    let mut app = TestApp::spawn().await;
    app.spawn_gateway().await;
    let admin = app.admin_token().await;
    let status = status(&app, &admin).await;
    let gateways = service(&status, "gateway")["instances"].as_array().unwrap();
    assert_eq!(gateways.len(), 2, "{status}");
    assert_ne!(gateways[0]["id"], gateways[1]["id"]);
}

#[tokio::test]
async fn status_answers_administrators_while_the_auth_service_is_down() {
    let mut app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.stop(Component::Service(ServiceName::Auth)).await;
    let status = status(&app, &admin).await;
    assert_eq!(service(&status, "auth")["health"], "down");
    assert_eq!(service(&status, "runs")["health"], "up");
}

#[tokio::test]
async fn status_is_refused_to_anyone_but_administrators() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, member) = app.user(&admin, "member@verdict.test").await;
    app.project(&member, "web").await;
    let (_, owner_token) = app.api_token(&member, "web", "owner").await;

    for token in [&member, &owner_token] {
        let response = app.get_as(token, "/api/v1/status").await;
        assert_eq!(response.status(), 403);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    let anonymous = app.get("/api/v1/status").await;
    assert_eq!(anonymous.status(), 401);
}
