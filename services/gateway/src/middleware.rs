//! What every request goes through: a request id, a span (the root of the trace), the
//! `traceresponse` header, metrics, and problem bodies for errors produced outside our
//! handlers (unknown route, wrong method, body over the limit).

use std::time::Instant;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use opentelemetry::trace::TraceContextExt;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::problem::{self, ApiError, Problem};
use crate::ratelimit::Spend;
use crate::state::AppState;

pub const REQUEST_ID: &str = "x-request-id";
/// W3C Trace Context Level 2 response header: lets a client quote the trace id.
pub const TRACE_RESPONSE: &str = "traceresponse";
/// Longest error body we read back to turn into a problem's detail.
const PLAIN_ERROR_LIMIT: usize = 4096;

/// A client's request id is kept if it is short and plain; otherwise a new one is made,
/// so nothing a client sends can forge or garble log lines.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Spends the client IP's budget for the route's kind (login, read or write) before
/// anything else runs. Behind a trusted load balancer, the client is the one it names.
pub async fn limit_by_ip(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let signs_in =
        path == "/api/v1/auth/login" || (path == "/login" && request.method() == Method::POST);
    let spend = if signs_in {
        Spend::Login
    } else if request.method() == Method::GET || request.method() == Method::HEAD {
        Spend::Read
    } else {
        Spend::Write
    };
    let client = state
        .settings
        .trusted_proxies
        .client(peer.ip(), request.headers());
    match state.limiter.check_ip(client, spend) {
        Ok(()) => next.run(request).await,
        Err(wait) => ApiError::RateLimited(wait).into_response(),
    }
}

pub async fn request_context(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.method = %method,
        http.route = %route,
        http.status = tracing::field::Empty,
        request_id = %id,
    );
    // A caller already in a trace (a CI job's, another service's) stays in it.
    let caller = verdict_bus::trace::extract_by(|name| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    });
    if caller.span().span_context().is_valid() {
        let _ = span.set_parent(caller);
    }
    let trace_response = {
        let context = span.context();
        let otel_span = context.span();
        let span_context = otel_span.span_context();
        span_context.is_valid().then(|| {
            format!(
                "00-{}-{}-{:02x}",
                span_context.trace_id(),
                span_context.span_id(),
                span_context.trace_flags().to_u8()
            )
        })
    };
    let mut response = async move {
        let response = next.run(request).await;
        let response = problem_for_plain_errors(response).await;
        tracing::Span::current().record("http.status", response.status().as_u16());
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        );
        response
    }
    .instrument(span)
    .await;

    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID, value);
    }
    if let Some(value) = trace_response.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(TRACE_RESPONSE, value);
    }
    let status = response.status().as_u16().to_string();
    let method = crate::metrics::method_label(&method);
    metrics::counter!(crate::metrics::HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!(crate::metrics::HTTP_REQUEST_DURATION, "method" => method, "route" => route).record(started.elapsed().as_secs_f64());
    response
}

/// Rewrites error responses that are not problem documents yet (produced by the router
/// or an extractor) into one, keeping their status and their short message.
async fn problem_for_plain_errors(response: Response) -> Response {
    let status = response.status();
    // Problem documents, and the dashboard's error pages, are answers already.
    let is_answer = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(problem::CONTENT_TYPE.as_bytes())
                || v.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_answer {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, PLAIN_ERROR_LIMIT)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .filter(|text| !text.trim().is_empty());
    let detail = match status {
        StatusCode::NOT_FOUND => "no such resource".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this resource".to_owned(),
        _ => text.unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
    };
    let mut problem = Problem::new(status, detail).into_response();
    // Keep headers such as `Allow` on a 405.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().insert(name.clone(), value.clone());
        }
    }
    problem
}
