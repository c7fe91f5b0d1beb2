//! The one place where the dashboard's errors become pages.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use verdict_bus::RequestError;
use verdict_contracts::ErrorCode;

use crate::pages::layout::{self, Page};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("not signed in")]
    SignedOut,
    #[error("not found")]
    NotFound,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    /// A state-changing request from another site, or without this session's token.
    #[error("cross-site request refused")]
    CrossSite,
    #[error("too many requests")]
    TooManyRequests(Option<u64>),
    #[error("a service is unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl From<RequestError> for WebError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::Service(error) => match error.code {
                ErrorCode::NotFound => WebError::NotFound,
                ErrorCode::Unauthorized => WebError::SignedOut,
                ErrorCode::Forbidden => WebError::Forbidden(error.message),
                ErrorCode::BadRequest | ErrorCode::PayloadTooLarge | ErrorCode::Unprocessable => {
                    WebError::BadRequest(error.message)
                }
                ErrorCode::Conflict => WebError::Conflict(error.message),
                ErrorCode::TooManyRequests => WebError::TooManyRequests(error.retry_after),
                ErrorCode::Unavailable => WebError::Unavailable,
                ErrorCode::Internal => WebError::Internal,
            },
            RequestError::NoResponders { .. }
            | RequestError::TimedOut { .. }
            | RequestError::StreamFull { .. } => WebError::Unavailable,
            other => {
                tracing::warn!(error = %other, "a page's bus request failed");
                WebError::Internal
            }
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, detail) = match &self {
            WebError::SignedOut => {
                return (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response()
            }
            WebError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or you have no access to it.".to_owned(),
            ),
            WebError::Forbidden(message) => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                format!("Your role does not allow this: {message}."),
            ),
            WebError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, "Cannot do that", message.clone())
            }
            WebError::Conflict(message) => {
                (StatusCode::CONFLICT, "Cannot do that", message.clone())
            }
            WebError::CrossSite => (
                StatusCode::FORBIDDEN,
                "Request refused",
                "This form did not come from this site's own pages. Reload the page and try again."
                    .to_owned(),
            ),
            WebError::TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                "Wait a moment and try again.".to_owned(),
            ),
            WebError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "A part of Verdict is not answering right now. Try again shortly.".to_owned(),
            ),
            WebError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The error was logged.".to_owned(),
            ),
        };
        let body = html! {
            h1 { (title) }
            p { (detail) }
            p { a href="/" { "Back to your projects" } }
        };
        let mut response = Page::new(title, layout::Nav::Minimal, body)
            .status(status)
            .into_response();
        if let WebError::TooManyRequests(Some(seconds)) = self {
            if let Ok(value) = seconds.to_string().parse() {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
