//! One trace spans gateway -> bus -> service.

use opentelemetry::trace::TraceId;
use verdict_testkit::{spans, TestApp};

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
