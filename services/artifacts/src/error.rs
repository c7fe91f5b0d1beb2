use verdict_contracts::{ErrorCode, ServiceError};

/// Everything the artifacts service can fail with, at start or in a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bus(#[from] verdict_bus::BusError),
    #[error(transparent)]
    Store(#[from] verdict_store::StoreError),
    #[error("database error: {0}")]
    Sqlite(#[from] verdict_store::rusqlite::Error),
    /// A call to the S3 API failed; `what` names the step.
    #[error("blob store error {what}: {}", aws_sdk_s3::error::DisplayErrorContext(.source.as_ref()))]
    S3 {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The blob store, or its settings, did what they must not; no error of another
    /// kind lies beneath.
    #[error("blob store error: {0}")]
    Blob(String),
    #[error("blob file task failed: {0}")]
    BlobTask(#[source] tokio::task::JoinError),
    #[error("blob file error at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("event could not be published: {0}")]
    Publish(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A call to another service failed; already in the form to answer with.
    #[error("{0}")]
    Dependency(ServiceError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// The uploaded bytes are not the declared ones.
    #[error("{0}")]
    Mismatch(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    BadRequest(String),
    /// The `Idempotency-Key` was given before with another request.
    #[error("the Idempotency-Key was used within the last 24 hours for another request")]
    KeyReused,
    #[error(transparent)]
    Idempotency(#[from] verdict_store::idempotency::IdempotencyError),
}

impl Error {
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

impl From<Error> for ServiceError {
    /// The one place artifacts errors become answers; internal detail is logged, not sent.
    fn from(error: Error) -> Self {
        match error {
            Error::Bus(_)
            | Error::Store(_)
            | Error::Sqlite(_)
            | Error::S3 { .. }
            | Error::Blob(_)
            | Error::BlobTask(_)
            | Error::Io { .. }
            | Error::Listen { .. }
            | Error::Publish(_)
            | Error::Idempotency(_) => {
                tracing::error!(error = %error, "artifacts request failed");
                ServiceError::internal()
            }
            Error::Dependency(error) => error,
            Error::NotFound(_) => ServiceError::not_found(error.to_string()),
            Error::Forbidden(message) => ServiceError::forbidden(message),
            Error::Conflict(message) => ServiceError::conflict(message),
            Error::Mismatch(message) => ServiceError::new(ErrorCode::Unprocessable, message),
            Error::TooLarge(message) => ServiceError::new(ErrorCode::PayloadTooLarge, message),
            Error::BadRequest(message) => ServiceError::bad_request(message),
            Error::KeyReused => ServiceError::new(ErrorCode::Unprocessable, error.to_string()),
        }
    }
}
