//! The process's Prometheus registry. The `metrics` facade is global by design; the
//! recorder is installed on first use so libraries can record before anyone renders.
//! Every histogram is a Prometheus histogram (`_bucket` series with `le`), so latencies
//! can be aggregated across instances with `histogram_quantile`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Upper bounds of every histogram's buckets, in seconds: from a cached query (well
/// under a millisecond) through a bus timeout (5 s) to the import of a large report.
pub const DURATION_BUCKETS: [f64; 18] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0, 600.0,
];

/// Installs the recorder if nothing did yet. Call early in `main` so every metric is
/// captured.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&DURATION_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (by an embedding program); ours then
        // renders an empty registry rather than failing the process.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// The current metrics in the Prometheus text exposition format.
pub fn prometheus_text() -> String {
    install().render()
}

/// Drains the samples histograms hold until they are folded into their buckets; run
/// periodically, or a process nobody scrapes grows without bound.
pub fn run_upkeep() {
    install().run_upkeep();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_rendered_with_buckets() {
        install();
        metrics::histogram!("verdict_test_duration_seconds").record(0.003);
        let text = prometheus_text();
        assert!(
            text.contains("# TYPE verdict_test_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("verdict_test_duration_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("verdict_test_duration_seconds_bucket{le=\"+Inf\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn bucket_bounds_ascend() {
        assert!(DURATION_BUCKETS.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
