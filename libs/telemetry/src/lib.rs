//! Observability for every Verdict process: `tracing` logs (JSON or human-readable,
//! filtered by `VERDICT_LOG`), OpenTelemetry spans (exported over OTLP/HTTP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; always created, so trace ids propagate), and a
//! Prometheus metrics registry served on the process's admin listener ([`admin`]).

pub mod admin;
mod metrics_registry;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;
use verdict_settings::{Env, SettingError};

pub use metrics_registry::install as install_metrics;

/// `VERDICT_ADMIN_LISTEN`'s default: loopback, on the port registered for Prometheus
/// exporters of OpenTelemetry.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9464);

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Telemetry configuration, read once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetrySettings {
    /// `service.name` of exported spans.
    pub service_name: String,
    /// An `EnvFilter` directive, e.g. `info,verdict_runs=debug`.
    pub filter: String,
    pub format: LogFormat,
    /// OTLP/HTTP endpoint; export is off when unset.
    pub otlp_endpoint: Option<String>,
    /// `VERDICT_ADMIN_LISTEN`: the address of the process's admin listener (`/metrics`),
    /// one per process whatever it runs.
    pub admin_listen: SocketAddr,
}

impl TelemetrySettings {
    pub fn from_env(env: &Env, service_name: &str) -> Result<Self, SettingError> {
        let format = match env.string("VERDICT_LOG_FORMAT", "pretty").as_str() {
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            other => {
                return Err(SettingError {
                    name: "VERDICT_LOG_FORMAT".into(),
                    value: other.into(),
                    reason: "expected json or pretty".into(),
                })
            }
        };
        let filter = env.string("VERDICT_LOG", "info");
        EnvFilter::try_new(&filter).map_err(|err| SettingError {
            name: "VERDICT_LOG".into(),
            value: filter.clone(),
            reason: err.to_string(),
        })?;
        Ok(Self {
            service_name: service_name.to_owned(),
            filter,
            format,
            otlp_endpoint: env.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
            admin_listen: env.parse("VERDICT_ADMIN_LISTEN", DEFAULT_ADMIN_LISTEN)?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Keeps span export alive; flushes pending spans when dropped.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(err) = self.provider.shutdown() {
            eprintln!("telemetry: flushing spans failed: {err}");
        }
    }
}

/// Makes rustls with ring this process's TLS provider; calls after the first do nothing.
/// reqwest is built without a provider of its own (no aws-lc-rs next to the ring that
/// async-nats brings), and panics building a client when none is installed: every
/// process calls this before it builds one. [`init`] does, and so do the test harness
/// and the benchmarks, which run services in-process.
pub fn install_tls_provider() {
    // An error only says a provider is installed already: ring, by an earlier call.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Installs the global subscriber, exporting spans over OTLP when configured.
pub fn init(settings: &TelemetrySettings) -> Result<TelemetryGuard, TelemetryError> {
    install_tls_provider();
    let provider = SdkTracerProvider::builder().with_resource(resource(settings));
    let provider = match &settings.otlp_endpoint {
        Some(endpoint) => {
            use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
                .with_headers(Default::default())
                .build()
                .map_err(|err| TelemetryError::Exporter(err.to_string()))?;
            provider.with_batch_exporter(exporter)
        }
        None => provider,
    };
    install(settings, provider.build())
}

/// Installs the global subscriber with spans sent synchronously to `exporter`, so tests
/// can inspect every finished span.
pub fn init_with_exporter<E: SpanExporter + 'static>(
    settings: &TelemetrySettings,
    exporter: E,
) -> Result<TelemetryGuard, TelemetryError> {
    let provider = SdkTracerProvider::builder()
        .with_resource(resource(settings))
        .with_simple_exporter(exporter)
        .build();
    install(settings, provider)
}

fn resource(settings: &TelemetrySettings) -> Resource {
    Resource::builder()
        .with_service_name(settings.service_name.clone())
        .build()
}

fn install(
    settings: &TelemetrySettings,
    provider: SdkTracerProvider,
) -> Result<TelemetryGuard, TelemetryError> {
    let tracer = provider.tracer("verdict");
    let filter = EnvFilter::new(&settings.filter);
    let otel = tracing_opentelemetry::layer().with_tracer(tracer);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let installed = match settings.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
    installed.map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(TelemetryGuard { provider })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_pretty_logs_at_info_without_export() {
        let settings =
            TelemetrySettings::from_env(&Env::from_pairs::<&str, &str>([]), "x").unwrap();
        assert_eq!(settings.format, LogFormat::Pretty);
        assert_eq!(settings.filter, "info");
        assert_eq!(settings.otlp_endpoint, None);
        assert_eq!(settings.admin_listen.to_string(), "127.0.0.1:9464");
    }

    #[test]
    fn the_admin_listener_takes_its_address_from_the_environment() {
        let env = Env::from_pairs([("VERDICT_ADMIN_LISTEN", "0.0.0.0:9100")]);
        let settings = TelemetrySettings::from_env(&env, "x").unwrap();
        assert_eq!(settings.admin_listen.to_string(), "0.0.0.0:9100");
    }

    #[test]
    fn a_malformed_admin_address_is_refused_by_name() {
        let env = Env::from_pairs([("VERDICT_ADMIN_LISTEN", "localhost")]);
        let err = TelemetrySettings::from_env(&env, "x").unwrap_err();
        assert_eq!(err.name, "VERDICT_ADMIN_LISTEN");
    }

    #[test]
    fn an_otlp_endpoint_turns_export_on() {
        let env = Env::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]);
        let settings = TelemetrySettings::from_env(&env, "x").unwrap();
        assert_eq!(
            settings.otlp_endpoint.as_deref(),
            Some("http://collector:4318")
        );
    }

    #[test]
    fn an_unknown_log_format_is_refused_by_name() {
        let env = Env::from_pairs([("VERDICT_LOG_FORMAT", "xml")]);
        let err = TelemetrySettings::from_env(&env, "x").unwrap_err();
        assert_eq!(err.name, "VERDICT_LOG_FORMAT");
    }

    #[test]
    fn an_invalid_filter_is_refused_by_name() {
        let env = Env::from_pairs([("VERDICT_LOG", "info,[=")]);
        let err = TelemetrySettings::from_env(&env, "x").unwrap_err();
        assert_eq!(err.name, "VERDICT_LOG");
    }
}
