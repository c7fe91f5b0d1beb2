//! Live viewers of imports and of large batches: every event fits any NATS deployment
//! (nats-server's default `max_payload` is 1 MiB), however many tests a report or a
//! batch holds, so no channel freezes on one it cannot carry.

use std::time::Duration;

use serde_json::{json, Value};
use verdict_contracts::events::MAX_EVENT_BYTES;
use verdict_testkit::{junit_report, LiveClient, TestApp};

const WAIT: Duration = Duration::from_secs(30);

/// Test names this long make a report's tests many megabytes of events.
const NAME_BYTES: usize = 1000;

/// Reads event frames until one of `last_kind`; returns the `test.finished` events'
/// tests, asserting each event fits [`MAX_EVENT_BYTES`].
async fn announced_tests(viewer: &mut LiveClient, last_kind: &str, until: usize) -> Vec<Value> {
    let mut tests = Vec::new();
    loop {
        let message = viewer.json(WAIT).await;
        assert_eq!(message["type"], "event", "{message}");
        let event = &message["event"];
        let size = serde_json::to_vec(event).unwrap().len();
        assert!(
            size <= MAX_EVENT_BYTES,
            "a {} event of {size} bytes",
            event["kind"]
        );
        if event["kind"] == "test.finished" {
            tests.extend(event["tests"].as_array().unwrap().iter().cloned());
        }
        if event["kind"] == last_kind || tests.len() >= until {
            return tests;
        }
    }
}

async fn reporter(app: &TestApp) -> String {
    let admin = app.admin_token().await;
    app.project(&admin, "web").await;
    app.api_token(&admin, "web", "reporter").await.1
}

#[tokio::test]
async fn a_viewer_sees_every_test_of_an_import_too_large_for_one_message_and_later_runs_flow() {
    let app = TestApp::spawn().await;
    let token = reporter(&app).await;
    let cases = 8_000;
    let import = app
        .submit_import(
            &token,
            "web",
            "application/xml",
            junit_report(cases, NAME_BYTES, 0),
        )
        .await;
    let mut viewer = app.live(&token).await;
    viewer
        .subscribe(
            &format!("run:{}", import["run_id"].as_str().unwrap()),
            Some(0),
        )
        .await;
    let subscribed = viewer.json(WAIT).await;
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    assert!(
        subscribed["snapshot"].is_null(),
        "the import was written before the viewer came: a snapshot instead of its events"
    );

    let tests = announced_tests(&mut viewer, "import.done", usize::MAX).await;
    assert_eq!(tests.len(), cases);
    assert!(serde_json::to_vec(&tests).unwrap().len() > 8 << 20);

    let run: Value = app
        .post(
            &token,
            "/api/v1/projects/web/runs",
            json!({ "name": "next" }),
        )
        .await
        .json()
        .await
        .unwrap();
    let channel = format!("run:{}", run["id"].as_str().unwrap());
    viewer.subscribe(&channel, None).await;
    assert_eq!(viewer.json(WAIT).await["type"], "subscribed");
    let posted = app
        .post(
            &token,
            &format!("/api/v1/runs/{}/results", run["id"].as_str().unwrap()),
            json!({ "results": [{ "name": "after the import", "status": "passed" }] }),
        )
        .await;
    assert_eq!(posted.status(), 202);
    let tests = announced_tests(&mut viewer, "test.finished", 1).await;
    assert_eq!(tests[0]["name"], "after the import");
}

#[tokio::test]
async fn a_live_batch_of_long_names_is_announced_in_several_events_under_the_limit() {
    let app = TestApp::spawn().await;
    let token = reporter(&app).await;
    let run: Value = app
        .post(
            &token,
            "/api/v1/projects/web/runs",
            json!({ "name": "live" }),
        )
        .await
        .json()
        .await
        .unwrap();
    let run_id = run["id"].as_str().unwrap();
    let mut viewer = app.live(&token).await;
    viewer.subscribe(&format!("run:{run_id}"), None).await;
    assert_eq!(viewer.json(WAIT).await["type"], "subscribed");

    let results: Vec<Value> = (0..1000)
        .map(|i| json!({ "name": format!("{i:0>NAME_BYTES$}"), "status": "passed" }))
        .collect();
    let posted = app
        .post(
            &token,
            &format!("/api/v1/runs/{run_id}/results"),
            json!({ "results": results }),
        )
        .await;
    assert_eq!(posted.status(), 202);

    let tests = announced_tests(&mut viewer, "run.progress", 1000).await;
    assert_eq!(tests.len(), 1000);
    let names: Vec<&str> = tests.iter().map(|t| t["name"].as_str().unwrap()).collect();
    let sent: Vec<String> = (0..1000).map(|i| format!("{i:0>NAME_BYTES$}")).collect();
    assert_eq!(names, sent);
}
