//! The artifacts service's metrics: their names and help, in one place.

use metrics::describe_counter;

use crate::domain::SweepReport;

pub const UPLOADED_BYTES: &str = "verdict_artifact_uploaded_bytes_total";
pub const DOWNLOADED_BYTES: &str = "verdict_artifact_downloaded_bytes_total";
pub const SWEEPS: &str = "verdict_artifact_sweeps_total";
pub const SWEPT: &str = "verdict_artifact_swept_total";

/// Installs the registry and describes the artifacts service's metrics; the byte
/// counters start at 0.
pub fn describe() {
    verdict_telemetry::install_metrics();
    describe_counter!(
        UPLOADED_BYTES,
        "Bytes of artifacts whose upload was verified (size and SHA-256) and stored."
    );
    describe_counter!(
        DOWNLOADED_BYTES,
        "Bytes of stored artifacts handed out for download (a signed download URL granted)."
    );
    describe_counter!(SWEEPS, "Sweeper passes, by outcome (ok or failed).");
    describe_counter!(
        SWEPT,
        "What sweeps removed, by kind: expired (uploads never completed), deleted (artifacts of deleted runs), orphan (blobs no artifact knows)."
    );
    metrics::counter!(UPLOADED_BYTES).increment(0);
    metrics::counter!(DOWNLOADED_BYTES).increment(0);
}

/// Counts one sweep and what it did.
pub fn swept(report: Option<SweepReport>) {
    let Some(report) = report else {
        metrics::counter!(SWEEPS, "outcome" => "failed").increment(1);
        return;
    };
    metrics::counter!(SWEEPS, "outcome" => "ok").increment(1);
    for (kind, count) in [
        ("expired", report.expired),
        ("deleted", report.removed),
        ("orphan", report.orphans),
    ] {
        metrics::counter!(SWEPT, "kind" => kind).increment(count);
    }
}
