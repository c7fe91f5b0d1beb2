//! The notify service's metrics: their names and help, in one place.

use std::time::Duration;

use metrics::{describe_counter, describe_histogram};

use crate::store::Target;

pub const ATTEMPTS: &str = "verdict_notify_attempts_total";
pub const ATTEMPT_SECONDS: &str = "verdict_notify_attempt_seconds";

/// Installs the registry and describes the notify service's metrics.
pub fn describe() {
    verdict_telemetry::install_metrics();
    describe_counter!(
        ATTEMPTS,
        "Delivery attempts, by target (webhook, github, gitlab) and outcome (succeeded, failed)."
    );
    describe_histogram!(
        ATTEMPT_SECONDS,
        "Time from sending a delivery's request to its answer."
    );
}

/// Records one attempt.
pub fn attempted(target: Target, succeeded: bool, latency: Option<Duration>) {
    let outcome = if succeeded { "succeeded" } else { "failed" };
    metrics::counter!(ATTEMPTS, "target" => target.as_str(), "outcome" => outcome).increment(1);
    if let Some(latency) = latency {
        metrics::histogram!(ATTEMPT_SECONDS).record(latency.as_secs_f64());
    }
}
