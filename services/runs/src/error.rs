use verdict_contracts::{ErrorCode, ServiceError};

/// Everything the runs service can fail with, at start or in a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bus(#[from] verdict_bus::BusError),
    #[error(transparent)]
    Store(#[from] verdict_store::StoreError),
    #[error("database error: {0}")]
    Sqlite(#[from] verdict_store::rusqlite::Error),
    #[error("could not encode a message: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("JetStream did not take a message: {0}")]
    Publish(#[from] verdict_bus::RequestError),
    /// A check by another service (scope, role) said no, or could not be made.
    #[error("{0}")]
    Refused(ServiceError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("q: {0}")]
    Search(#[from] crate::domain::InvalidSearch),
    #[error("{0}")]
    Conflict(String),
    /// The `Idempotency-Key` was given before with another request.
    #[error("the Idempotency-Key was used within the last 24 hours for another request")]
    KeyReused,
    #[error(transparent)]
    Idempotency(#[from] verdict_store::idempotency::IdempotencyError),
}

impl From<Error> for ServiceError {
    /// The one place runs errors become answers; internal detail is logged, not sent.
    fn from(error: Error) -> Self {
        match error {
            Error::Bus(_)
            | Error::Store(_)
            | Error::Sqlite(_)
            | Error::Encode(_)
            | Error::Publish(_)
            | Error::Idempotency(_) => {
                tracing::error!(error = %error, "runs request failed");
                ServiceError::internal()
            }
            Error::Refused(refusal) => refusal,
            Error::NotFound(_) => ServiceError::new(ErrorCode::NotFound, error.to_string()),
            Error::BadRequest(message) => ServiceError::bad_request(message),
            Error::Search(_) => ServiceError::bad_request(error.to_string()),
            Error::Conflict(message) => ServiceError::new(ErrorCode::Conflict, message),
            Error::KeyReused => ServiceError::new(ErrorCode::Unprocessable, error.to_string()),
        }
    }
}
