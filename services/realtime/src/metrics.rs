//! The realtime service's metrics: their names and help, in one place.

use std::time::Duration;

use metrics::{describe_gauge, describe_histogram};

pub const SEQUENCING_LAG: &str = "verdict_live_sequencing_lag_seconds";
pub const EVENTS_PENDING: &str = "verdict_live_events_pending";

/// Installs the registry and describes the realtime service's metrics; the gauge
/// starts at 0.
pub fn describe() {
    verdict_telemetry::install_metrics();
    describe_histogram!(
        SEQUENCING_LAG,
        "Time from an event's storage in VERDICT_EVENTS until the sequencer has handled it (its live frames stored; progress held back to be coalesced counts as handled)."
    );
    describe_gauge!(
        EVENTS_PENDING,
        "Events in VERDICT_EVENTS the sequencer has not taken yet."
    );
    metrics::gauge!(EVENTS_PENDING).set(0.0);
}

/// Records that the event stored at `published` has been handled now, with `pending`
/// events behind it.
pub fn sequenced(published: time::OffsetDateTime, pending: u64) {
    let lag: Duration = (time::OffsetDateTime::now_utc() - published)
        .try_into()
        .unwrap_or(Duration::ZERO);
    metrics::histogram!(SEQUENCING_LAG).record(lag.as_secs_f64());
    metrics::gauge!(EVENTS_PENDING).set(pending as f64);
}
