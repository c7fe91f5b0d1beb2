//! RFC 9457 problem responses: the one place where errors become HTTP answers.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use verdict_bus::RequestError;
use verdict_contracts::ErrorCode;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// One offending input field of a validation error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match self {
            ApiError::NotReady(unavailable) => Problem {
                detail: format!("not ready: {}", unavailable.join(", ")),
                unavailable,
                ..Problem::new(StatusCode::SERVICE_UNAVAILABLE, "")
            },
            ApiError::Bus(error) => bus_problem(error),
        };
        problem.into_response()
    }
}

/// Maps a bus failure to what the client may see; internals are logged here, once.
fn bus_problem(error: RequestError) -> Problem {
    match error {
        RequestError::Service(error) => {
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
            Problem::new(status, detail)
        }
        RequestError::NoResponders { subject } => {
            tracing::warn!(%subject, "no service instance answers");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "a backend service is unavailable; retry shortly",
            )
        }
        RequestError::TimedOut { subject, timeout } => {
            tracing::warn!(%subject, ?timeout, "backend request timed out");
            Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "a backend service did not answer in time",
            )
        }
        RequestError::Codec { subject, reason } | RequestError::Transport { subject, reason } => {
            tracing::error!(%subject, %reason, "backend request failed");
            Problem::new(StatusCode::BAD_GATEWAY, "a backend service failed")
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
        let problem = bus_problem(error);
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("/var/x"));
    }

    #[test]
    fn a_missing_service_is_a_503() {
        let problem = bus_problem(RequestError::NoResponders {
            subject: "verdict.v1.runs.x".into(),
        });
        assert_eq!(problem.status, 503);
        assert!(!problem.detail.contains("verdict.v1"));
    }
}
