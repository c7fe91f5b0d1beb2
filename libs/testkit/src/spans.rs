//! Finished spans captured in memory, so a test can follow a trace across services.

use std::sync::{Arc, Mutex};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use verdict_telemetry::{LogFormat, TelemetryGuard, TelemetrySettings};

/// Every span finished in this process since [`capture`] was called.
#[derive(Debug, Clone, Default)]
pub struct CapturedSpans(Arc<Mutex<Vec<SpanData>>>);

impl CapturedSpans {
    pub fn all(&self) -> Vec<SpanData> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl SpanExporter for CapturedSpans {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(batch);
        Ok(())
    }
}

/// Installs telemetry for this test process with spans captured in memory. Each test
/// binary run by nextest is its own process, so this is called once per test.
pub fn capture() -> (CapturedSpans, TelemetryGuard) {
    let spans = CapturedSpans::default();
    let settings = TelemetrySettings {
        service_name: "verdict-test".into(),
        filter: "info".into(),
        format: LogFormat::Pretty,
        traces_endpoint: None,
        export_headers: Vec::new(),
        export_timeout: None,
        resource_attributes: Vec::new(),
        admin_listen: verdict_telemetry::DEFAULT_ADMIN_LISTEN,
    };
    let guard = verdict_telemetry::init_with_exporter(&settings, spans.clone())
        .expect("no other subscriber in this test process");
    (spans, guard)
}
