//! W3C trace context in NATS headers, so one trace spans gateway -> service -> store.
//! The propagator is used directly rather than through a global, so propagation works
//! whatever the process installed.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|value| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

const TRACE_HEADERS: [&str; 2] = [verdict_contracts::headers::TRACEPARENT, "tracestate"];

/// Reads a trace context from headers found by `lookup` (an HTTP request's, say).
pub fn extract_by<'a>(lookup: impl Fn(&str) -> Option<&'a str>) -> Context {
    let found: std::collections::HashMap<String, String> = TRACE_HEADERS
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), lookup(name)?.to_owned())))
        .collect();
    TraceContextPropagator::new().extract(&found)
}

/// Writes the current span's trace context into `headers` (`traceparent`, `tracestate`).
pub fn inject_current(headers: &mut HeaderMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

/// Headers holding only the current span's trace context, for a message that starts
/// work elsewhere (a JetStream message, an event).
pub fn current_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    inject_current(&mut headers);
    headers
}

/// Makes `span` continue the trace a message's sender put into `headers`.
pub fn continue_from(span: &tracing::Span, headers: Option<&HeaderMap>) {
    // Fails only when no OpenTelemetry layer is installed: nothing to continue then.
    let _ = span.set_parent(extract(headers));
}

/// Makes `span`, which handles several messages at once, continue the first one's trace
/// and link the others', so each message's trace still leads to the work done for it.
pub fn continue_all<'a>(span: &tracing::Span, traces: impl IntoIterator<Item = &'a Context>) {
    let mut traces = traces.into_iter();
    if let Some(first) = traces.next() {
        let _ = span.set_parent(first.clone());
    }
    for trace in traces {
        let linked = trace.span().span_context().clone();
        if linked.is_valid() {
            span.add_link(linked);
        }
    }
}

/// Reads the trace context a sender put into `headers`.
pub fn extract(headers: Option<&HeaderMap>) -> Context {
    match headers {
        Some(headers) => TraceContextPropagator::new().extract(&HeaderExtractor(headers)),
        None => Context::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_header_is_read_back_as_the_remote_parent() {
        let mut headers = HeaderMap::new();
        headers.insert(
            verdict_contracts::headers::TRACEPARENT,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        let context = extract(Some(&headers));
        let span = context.span();
        let parent = span.span_context();
        assert!(parent.is_remote());
        assert_eq!(
            parent.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn missing_headers_give_an_empty_context() {
        let context = extract(None);
        assert!(!context.span().span_context().is_valid());
    }
}
