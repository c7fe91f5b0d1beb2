//! The runs service's metrics: their names and help, in one place. Its bus requests and
//! its ingest queue (`verdict_work_queue_*{stream="VERDICT_INGEST"}`: waiting messages
//! and the consumer's lag) are measured by the bus library.

use metrics::{describe_counter, describe_gauge, describe_histogram};

pub const INGEST_BATCHES_APPLIED: &str = "verdict_ingest_batches_applied_total";
pub const INGEST_RESULTS_APPLIED: &str = "verdict_ingest_results_applied_total";
pub const INGEST_APPLY_DURATION: &str = "verdict_ingest_apply_duration_seconds";
pub const IMPORT_DURATION: &str = "verdict_import_duration_seconds";
pub const TEXT_INDEX_RESULTS_WAITING: &str = "verdict_text_index_results_waiting";

/// Installs the registry and describes the runs service's metrics; the counters start
/// at 0.
pub fn describe() {
    verdict_telemetry::install_metrics();
    describe_counter!(
        INGEST_BATCHES_APPLIED,
        "Result batches from the ingest stream committed to the database."
    );
    describe_counter!(
        INGEST_RESULTS_APPLIED,
        "Results from the ingest stream committed to the database."
    );
    describe_histogram!(
        INGEST_APPLY_DURATION,
        "Time to apply one round of ingest messages taken from the stream together: waiting for the database writer, decoding and committing."
    );
    describe_histogram!(
        IMPORT_DURATION,
        "Time of one attempt at an imported report, from fetching it to storing its results, by outcome (done, failed, retried, run_gone, stopped)."
    );
    describe_gauge!(
        TEXT_INDEX_RESULTS_WAITING,
        "Stored, changed or deleted results the text indexer had still to take after its last pass: how far search is behind the results."
    );
    metrics::counter!(INGEST_BATCHES_APPLIED).increment(0);
    metrics::counter!(INGEST_RESULTS_APPLIED).increment(0);
}
