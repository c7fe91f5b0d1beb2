use std::time::Duration;

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
        reason: String,
    },
    #[error("could not register `{what}` on the bus: {reason}")]
    Register { what: String, reason: String },
    #[error("JetStream stream `{stream}` could not be created or updated: {reason}")]
    Stream { stream: String, reason: String },
    #[error("could not drain the NATS connection: {0}")]
    Drain(String),
    #[error("the {task} ended while the service ran: {source}")]
    TaskEnded {
        task: &'static str,
        source: crate::tasks::TaskEnd,
    },
}
