//! RFC 9457 problem responses: the one place where errors become HTTP answers.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use verdict_bus::RequestError;
use verdict_contracts::ErrorCode;
pub use verdict_contracts::FieldError;

use crate::auth::AuthError;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// Seconds a client waits before posting again into a full ingest backlog: it drains at
/// the runs service's pace, so an immediate retry would only be refused again.
const INGEST_FULL_RETRY_AFTER: u64 = 5;

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, stable for machines to match on.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The offending fields of a validation error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Dependencies that are down (readiness only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<String>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        let title = status.canonical_reason().unwrap_or("Error");
        Self {
            kind: format!("urn:verdict:problem:{}", slug(title)),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            unavailable: Vec::new(),
        }
    }
}

fn slug(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
    }
}

/// Everything a gateway handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not ready: {}", .0.join(", "))]
    NotReady(Vec<String>),
    #[error(transparent)]
    Bus(#[from] RequestError),
    #[error("not authenticated: {0}")]
    Unauthenticated(#[from] AuthError),
    #[error("rate limited for {0:?}")]
    RateLimited(Duration),
    #[error("{0}")]
    BadRequest(String),
    #[error("invalid request")]
    Validation(Vec<FieldError>),
    #[error("request body over the limit")]
    PayloadTooLarge,
    #[error("the ingest stream did not accept the data")]
    IngestUnavailable,
    /// Accepted data waits in the ingest stream up to its limit; the runs service has
    /// fallen that far behind (or is down).
    #[error("the ingest backlog is full")]
    IngestFull,
    #[error("unsupported content type")]
    UnsupportedMediaType(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    TooManySockets(&'static str),
    /// A backend reached over HTTP (the artifacts service's blob server) failed.
    #[error("{0}")]
    Upstream(String),
    /// The request to such a backend failed ([`ApiError::upstream_request`]).
    #[error("request to the blob store failed: {0}")]
    UpstreamRequest(#[source] reqwest::Error),
    /// A request body could not be kept in or read back from a temporary file.
    #[error("spooling a request body: {0}")]
    Spool(#[source] std::io::Error),
}

impl ApiError {
    /// A failed request to an HTTP backend, without its URL: the query of a blob URL is
    /// a signature, never to be logged.
    pub fn upstream_request(error: reqwest::Error) -> Self {
        ApiError::UpstreamRequest(error.without_url())
    }

    /// A 400 naming the one field (or query parameter) that is wrong, and why.
    pub fn invalid(field: &str, message: &str) -> Self {
        ApiError::Validation(vec![FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        }])
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (problem, retry_after) = match self {
            ApiError::NotReady(unavailable) => (
                Problem {
                    detail: format!("not ready: {}", unavailable.join(", ")),
                    unavailable,
                    ..Problem::new(StatusCode::SERVICE_UNAVAILABLE, "")
                },
                None,
            ),
            ApiError::Bus(error) => bus_problem(error),
            ApiError::Unauthenticated(AuthError::Unavailable(error)) => {
                tracing::warn!(error = %error, "cannot verify a token: auth unavailable");
                (
                    Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "authentication is unavailable; retry shortly",
                    ),
                    Some(1),
                )
            }
            ApiError::Unauthenticated(reason) => {
                tracing::debug!(%reason, "request not authenticated");
                let detail = match reason {
                    AuthError::Missing => "a bearer token is required",
                    AuthError::Jwt(_)
                    | AuthError::Revoked
                    | AuthError::InvalidApiToken
                    | AuthError::Unavailable(_) => "the token is invalid, expired or revoked",
                };
                let mut response = Problem::new(StatusCode::UNAUTHORIZED, detail).into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return response;
            }
            ApiError::RateLimited(wait) => (
                Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate limit exceeded; retry later",
                ),
                Some(wait.as_secs_f64().ceil().max(1.0) as u64),
            ),
            ApiError::BadRequest(detail) => (Problem::new(StatusCode::BAD_REQUEST, detail), None),
            ApiError::Validation(errors) => (
                Problem {
                    errors,
                    ..Problem::new(StatusCode::BAD_REQUEST, "the request body is invalid")
                },
                None,
            ),
            ApiError::IngestUnavailable => (
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the data could not be stored; retry shortly",
                ),
                Some(1),
            ),
            ApiError::IngestFull => (
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too much accepted data is waiting to be stored; retry later",
                ),
                Some(INGEST_FULL_RETRY_AFTER),
            ),
            ApiError::PayloadTooLarge => (
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the request body is over the limit",
                ),
                None,
            ),
            ApiError::UnsupportedMediaType(expected) => (
                Problem::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("expected Content-Type: {expected}"),
                ),
                None,
            ),
            ApiError::NotFound(detail) => (Problem::new(StatusCode::NOT_FOUND, detail), None),
            ApiError::Forbidden(detail) => (Problem::new(StatusCode::FORBIDDEN, detail), None),
            ApiError::TooManySockets(detail) => {
                (Problem::new(StatusCode::TOO_MANY_REQUESTS, detail), Some(1))
            }
            ApiError::Upstream(_) | ApiError::UpstreamRequest(_) => {
                tracing::error!(error = %self, "upstream HTTP request failed");
                (
                    Problem::new(StatusCode::BAD_GATEWAY, "a backend service failed"),
                    None,
                )
            }
            ApiError::Spool(_) => {
                tracing::error!(error = %self, "request failed");
                (
                    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
                    None,
                )
            }
        };
        let mut response = problem.into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Maps a bus failure to what the client may see (and when to retry); internals are
/// logged here, once.
fn bus_problem(error: RequestError) -> (Problem, Option<u64>) {
    match error {
        RequestError::Service(error) => {
            let retry_after = error.retry_after;
            let status = StatusCode::from_u16(error.code.status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let detail = match error.code {
                ErrorCode::Internal => "internal error".to_owned(),
                ErrorCode::BadRequest
                | ErrorCode::Unauthorized
                | ErrorCode::Forbidden
                | ErrorCode::NotFound
                | ErrorCode::Conflict
                | ErrorCode::PayloadTooLarge
                | ErrorCode::Unprocessable
                | ErrorCode::TooManyRequests
                | ErrorCode::Unavailable => error.message,
            };
            (Problem::new(status, detail), retry_after)
        }
        RequestError::NoResponders { subject } => {
            tracing::warn!(%subject, "no service instance answers");
            let detail = "a backend service is unavailable; retry shortly";
            (
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail),
                Some(1),
            )
        }
        RequestError::TimedOut { subject, timeout } => {
            tracing::warn!(%subject, ?timeout, "backend request timed out");
            let detail = "a backend service did not answer in time";
            (Problem::new(StatusCode::GATEWAY_TIMEOUT, detail), None)
        }
        RequestError::StreamFull { subject, reason } => {
            tracing::warn!(%subject, %reason, "a stream is full");
            (
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the service is overloaded; retry later",
                ),
                Some(INGEST_FULL_RETRY_AFTER),
            )
        }
        RequestError::Codec { subject, reason } | RequestError::Transport { subject, reason } => {
            tracing::error!(%subject, %reason, "backend request failed");
            let detail = "a backend service failed";
            (Problem::new(StatusCode::BAD_GATEWAY, detail), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use verdict_contracts::ServiceError;

    use super::*;

    #[test]
    fn problem_type_is_derived_from_the_status() {
        let problem = Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too big");
        assert_eq!(problem.kind, "urn:verdict:problem:payload-too-large");
        assert_eq!(problem.status, 413);
    }

    #[test]
    fn internal_service_errors_never_reach_the_client() {
        let error = RequestError::Service(ServiceError::new(
            ErrorCode::Internal,
            "disk I/O error at /var/x",
        ));
        let (problem, _) = bus_problem(error);
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("/var/x"));
    }

    #[test]
    fn a_missing_service_is_a_503() {
        let (problem, retry_after) = bus_problem(RequestError::NoResponders {
            subject: "verdict.v1.runs.x".into(),
        });
        assert_eq!(problem.status, 503);
        assert_eq!(retry_after, Some(1));
        assert!(!problem.detail.contains("verdict.v1"));
    }

    #[tokio::test]
    async fn a_failed_blob_request_never_shows_the_signed_url() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/blobs/k?signature=s3cr3t",
            closed.local_addr().unwrap()
        );
        drop(closed);
        verdict_telemetry::install_tls_provider();
        let failed = reqwest::Client::new().get(url).send().await.unwrap_err();
        assert!(failed.to_string().contains("s3cr3t"), "reqwest shows it");
        let error = ApiError::upstream_request(failed);
        assert!(!format!("{error} {error:?}").contains("s3cr3t"));
    }
}
