//! The metrics every service has through the bus: its handled requests and its work
//! queues.

use metrics::{describe_gauge, describe_histogram};

pub const BUS_REQUEST_DURATION: &str = "verdict_bus_request_duration_seconds";
pub const WORK_QUEUE_OLDEST_AGE: &str = "verdict_work_queue_oldest_message_age_seconds";
pub const WORK_QUEUE_MESSAGES: &str = "verdict_work_queue_messages";

/// Installs the registry and describes the bus's metrics.
pub fn describe() {
    verdict_telemetry::install_metrics();
    describe_histogram!(
        BUS_REQUEST_DURATION,
        "Time a service took to handle a bus request, from decoding it to sending the reply, by service, operation and outcome (ok or the error code)."
    );
    describe_gauge!(
        WORK_QUEUE_OLDEST_AGE,
        "Age of the oldest message of a work queue not yet handled: how far its consumer lags behind (0 when empty)."
    );
    describe_gauge!(
        WORK_QUEUE_MESSAGES,
        "Messages waiting in a work queue (accepted, not yet handled)."
    );
}
