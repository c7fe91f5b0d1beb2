use verdict_contracts::{ErrorCode, ServiceError};

/// Everything the realtime service can fail with, at start or in a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bus(#[from] verdict_bus::BusError),
    #[error("JetStream error: {0}")]
    JetStream(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A check by another service (scope, role) said no, or could not be made.
    #[error("{0}")]
    Refused(ServiceError),
    #[error("the events consumer stopped")]
    ConsumerStopped,
}

impl From<Error> for ServiceError {
    /// The one place realtime errors become answers; internal detail is logged, not sent.
    fn from(error: Error) -> Self {
        match error {
            Error::Bus(_) | Error::JetStream(_) | Error::ConsumerStopped => {
                tracing::error!(error = %error, "realtime request failed");
                ServiceError::new(ErrorCode::Unavailable, "live state is unavailable")
            }
            Error::Refused(refusal) => refusal,
        }
    }
}
