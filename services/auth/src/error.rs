use verdict_contracts::{ErrorCode, ServiceError};

/// Everything the auth service can fail with, at start or in a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bus(#[from] verdict_bus::BusError),
    #[error(transparent)]
    Store(#[from] verdict_store::StoreError),
    #[error("database error: {0}")]
    Sqlite(#[from] verdict_store::rusqlite::Error),
    #[error("no current signing key")]
    NoSigningKey,
    #[error("signing key could not be encoded: {0}")]
    KeyEncoding(#[source] ed25519_dalek::pkcs8::Error),
    #[error("token could not be signed: {0}")]
    Signing(#[source] jsonwebtoken::errors::Error),
    #[error("signing key error: {0}")]
    AtRest(#[from] verdict_store::at_rest::AtRestError),
    #[error("password hashing failed: {0}")]
    PasswordHash(#[source] argon2::password_hash::Error),
    #[error("password hashing task failed: {0}")]
    PasswordTask(#[source] tokio::task::JoinError),
    #[error("revocation could not be published: {0}")]
    Revocation(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("too many sign-ins at once; retry shortly")]
    Busy,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("too many failed logins; retry in {retry_after} s")]
    LockedOut { retry_after: u64 },
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    /// The `Idempotency-Key` was given before with another request.
    #[error("the Idempotency-Key was used within the last 24 hours for another request")]
    KeyReused,
    #[error(transparent)]
    Idempotency(#[from] verdict_store::idempotency::IdempotencyError),
}

impl From<Error> for ServiceError {
    /// The one place auth errors become answers; internal detail is logged, not sent.
    fn from(error: Error) -> Self {
        match error {
            Error::Bus(_)
            | Error::Store(_)
            | Error::Sqlite(_)
            | Error::NoSigningKey
            | Error::KeyEncoding(_)
            | Error::Signing(_)
            | Error::AtRest(_)
            | Error::PasswordHash(_)
            | Error::PasswordTask(_)
            | Error::Revocation(_)
            | Error::Idempotency(_) => {
                tracing::error!(error = %error, "auth request failed");
                ServiceError::internal()
            }
            Error::Busy => ServiceError {
                retry_after: Some(1),
                ..ServiceError::new(ErrorCode::Unavailable, error.to_string())
            },
            Error::InvalidCredentials => ServiceError::unauthorized(error.to_string()),
            Error::LockedOut { retry_after } => {
                ServiceError::too_many_requests(error.to_string(), retry_after)
            }
            Error::Unauthorized(message) => ServiceError::unauthorized(message),
            Error::Forbidden(message) => ServiceError::forbidden(message),
            Error::NotFound(_) => ServiceError::new(ErrorCode::NotFound, error.to_string()),
            Error::Conflict(message) => ServiceError::conflict(message),
            Error::KeyReused => ServiceError::new(ErrorCode::Unprocessable, error.to_string()),
            Error::BadRequest(message) => ServiceError::bad_request(message),
        }
    }
}
