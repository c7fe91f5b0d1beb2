use std::time::Duration;

/// An internal error kept whole, for its message and its sources.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Failures of the bus plumbing itself (not of a request's outcome: see
/// [`crate::RequestError`]).
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(
        "could not connect to NATS at {url} after {attempts} attempts over {waited:?}: {reason}"
    )]
    Connect {
        url: String,
        attempts: u32,
        waited: Duration,
        #[source]
        reason: BoxError,
    },
    #[error("could not register `{what}` on the bus: {reason}")]
    Register {
        what: String,
        #[source]
        reason: BoxError,
    },
    #[error("cannot write the instance id file {path} (VERDICT_INSTANCE_FILE): {source}")]
    InstanceFile {
        path: String,
        source: std::io::Error,
    },
    #[error("JetStream stream `{stream}` could not be created or updated: {reason}")]
    Stream {
        stream: String,
        #[source]
        reason: BoxError,
    },
    #[error("could not drain the NATS connection: {0}")]
    Drain(#[source] async_nats::client::DrainError),
    #[error("the {task} ended while the service ran: {source}")]
    TaskEnded {
        task: &'static str,
        source: crate::tasks::TaskEnd,
    },
}
