//! One trace spans gateway -> bus -> service.

use std::time::Duration;

use opentelemetry::trace::TraceId;
use serde_json::{json, Value};
use verdict_testkit::{spans, OtlpReceiver, TestApp};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_trace_started_at_the_gateway_reaches_the_service_span() {
    let (captured, _guard) = spans::capture();
    let app = TestApp::spawn().await;

    let response = app.get("/api/v1/version").await;
    assert_eq!(response.status(), 200);
    let trace_response = response.headers()["traceresponse"]
        .to_str()
        .unwrap()
        .to_owned();
    let trace_id = TraceId::from_hex(trace_response.split('-').nth(1).unwrap()).unwrap();

    let spans = captured.all();
    let handled: Vec<_> = spans
        .iter()
        .filter(|span| span.name == "verdict.v1.auth.version")
        .collect();
    assert!(!handled.is_empty(), "the auth service recorded no span");
    assert!(
        handled
            .iter()
            .any(|span| span.span_context.trace_id() == trace_id),
        "no auth span belongs to trace {trace_id}"
    );
}

/// A caller's trace id, as a CI job already inside a trace would send it.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test]
async fn one_trace_leads_from_a_result_post_through_the_apply_to_the_live_frame_at_a_collector() {
    let collector = OtlpReceiver::start().await;
    let guard = collector.export_here("verdict-test");
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let project = app.project(&admin, "traced").await;
    let (_, reporter) = app.api_token(&admin, &project, "reporter").await;
    let created = app
        .post(
            &reporter,
            &format!("/api/v1/projects/{project}/runs"),
            json!({ "name": "traced" }),
        )
        .await;
    let run: Value = created.json().await.unwrap();
    let run = run["id"].as_str().unwrap().to_owned();
    let mut viewer = app.live(&admin).await;
    viewer.subscribe(&format!("run:{run}"), None).await;
    assert_eq!(viewer.json(WAIT).await["type"], "subscribed");

    let posted = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/runs/{run}/results")))
        .bearer_auth(&reporter)
        .header(
            "traceparent",
            format!("00-{CALLER_TRACE}-00f067aa0ba902b7-01"),
        )
        .json(&json!({ "results": [{ "name": "traced test", "status": "passed" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);
    loop {
        let frame = viewer.json(WAIT).await;
        if frame["event"]["kind"] == "test.finished" {
            break;
        }
    }
    // A span ends when its work does, which may be just after the frame reached the
    // viewer: the spans are exported and looked at until every step is there.
    let guard = std::sync::Arc::new(guard);
    let steps = [
        "POST /api/v1/runs/{run}/results",
        "runs.ingest.apply",
        "realtime.sequence",
        "live.fan_out",
    ];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let flushing = guard.clone();
        // The flush blocks until this test's own collector, on this runtime, answers.
        tokio::task::spawn_blocking(move || flushing.flush())
            .await
            .unwrap();
        let in_trace: Vec<(String, String)> = collector
            .spans()
            .into_iter()
            .filter(|(_, span)| hex(&span.trace_id) == CALLER_TRACE)
            .map(|(service, span)| (service, span.name))
            .collect();
        let missing: Vec<&str> = steps
            .iter()
            .copied()
            .filter(|step| !in_trace.iter().any(|(_, name)| name == step))
            .collect();
        if missing.is_empty() {
            assert!(in_trace
                .iter()
                .all(|(service, _)| service == "verdict-test"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no span {missing:?} in the caller's trace: {in_trace:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
