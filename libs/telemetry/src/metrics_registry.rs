//! The process's Prometheus registry. The `metrics` facade is global by design; the
//! recorder is installed on first use so libraries can record before anyone renders.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder if nothing did yet. Call early in `main` so every metric is
/// captured.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
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
