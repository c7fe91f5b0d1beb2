use verdict_contracts::{ErrorCode, ServiceError};

/// Everything the notify service can fail with, at start or in a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bus(#[from] verdict_bus::BusError),
    #[error(transparent)]
    Store(#[from] verdict_store::StoreError),
    #[error("database error: {0}")]
    Sqlite(#[from] verdict_store::rusqlite::Error),
    #[error(transparent)]
    Idempotency(#[from] verdict_store::idempotency::IdempotencyError),
    #[error(transparent)]
    AtRest(#[from] verdict_store::at_rest::AtRestError),
    #[error("the HTTP client cannot be built: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// A call to another service failed; already in the form to answer with.
    #[error("{0}")]
    Dependency(ServiceError),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A field of the request is unusable: its name and why.
    #[error("`{field}` {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    /// The `Idempotency-Key` was given before with another request.
    #[error("the Idempotency-Key was used within the last 24 hours for another request")]
    KeyReused,
}

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<Error> for ServiceError {
    /// The one place notify errors become answers; internal detail is logged, not sent.
    fn from(error: Error) -> Self {
        match error {
            Error::Bus(_)
            | Error::Store(_)
            | Error::Sqlite(_)
            | Error::Idempotency(_)
            | Error::HttpClient(_)
            | Error::AtRest(_) => {
                tracing::error!(error = %error, "notify request failed");
                ServiceError::internal()
            }
            Error::Dependency(error) => error,
            Error::NotFound(_) => ServiceError::not_found(error.to_string()),
            Error::Invalid { .. } => ServiceError::bad_request(error.to_string()),
            Error::Conflict(message) => ServiceError::conflict(message),
            Error::KeyReused => ServiceError::new(ErrorCode::Unprocessable, error.to_string()),
        }
    }
}
