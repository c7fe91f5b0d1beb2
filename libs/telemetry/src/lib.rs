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
#[derive(Clone, PartialEq, Eq)]
pub struct TelemetrySettings {
    /// `service.name` of exported spans: `OTEL_SERVICE_NAME`, else `service.name` of
    /// `OTEL_RESOURCE_ATTRIBUTES`, else the process's own name.
    pub service_name: String,
    /// An `EnvFilter` directive, e.g. `info,verdict_runs=debug`.
    pub filter: String,
    pub format: LogFormat,
    /// Where spans are posted over OTLP/HTTP; export is off when unset.
    pub traces_endpoint: Option<String>,
    /// Headers of every export (often a collector's API key): never logged.
    pub export_headers: Vec<(String, String)>,
    /// How long one export may take.
    pub export_timeout: Option<std::time::Duration>,
    /// Further attributes of every exported span's resource.
    pub resource_attributes: Vec<(String, String)>,
    /// `VERDICT_ADMIN_LISTEN`: the address of the process's admin listener (`/metrics`),
    /// one per process whatever it runs.
    pub admin_listen: SocketAddr,
}

/// Export headers are secrets: the debug form names them only.
impl std::fmt::Debug for TelemetrySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let header_names: Vec<&str> = self
            .export_headers
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        f.debug_struct("TelemetrySettings")
            .field("service_name", &self.service_name)
            .field("filter", &self.filter)
            .field("format", &self.format)
            .field("traces_endpoint", &self.traces_endpoint)
            .field("export_headers", &header_names)
            .field("export_timeout", &self.export_timeout)
            .field("resource_attributes", &self.resource_attributes)
            .field("admin_listen", &self.admin_listen)
            .finish()
    }
}

impl TelemetrySettings {
    /// Reads `VERDICT_LOG`, `VERDICT_LOG_FORMAT` and OpenTelemetry's standard variables
    /// for traces: `OTEL_SDK_DISABLED`, `OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT`,
    /// `..._PROTOCOL` (only `http/protobuf`), `..._HEADERS`, `..._TIMEOUT`,
    /// `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`.
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
        let mut resource_attributes = match env.get("OTEL_RESOURCE_ATTRIBUTES") {
            Some(text) => key_values("OTEL_RESOURCE_ATTRIBUTES", &text, true)?,
            None => Vec::new(),
        };
        let named_in_resource = resource_attributes
            .iter()
            .position(|(key, _)| key == "service.name")
            .map(|at| resource_attributes.remove(at).1);
        let service_name = env
            .get("OTEL_SERVICE_NAME")
            .filter(|name| !name.trim().is_empty())
            .or(named_in_resource)
            .unwrap_or_else(|| service_name.to_owned());
        let disabled = env
            .get("OTEL_SDK_DISABLED")
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
        let signal = |name: &str| {
            let specific = format!("OTEL_EXPORTER_OTLP_TRACES_{name}");
            match env.get(&specific) {
                Some(value) => Some((specific, value)),
                None => {
                    let general = format!("OTEL_EXPORTER_OTLP_{name}");
                    env.get(&general).map(|value| (general, value))
                }
            }
        };
        if let Some((name, protocol)) = signal("PROTOCOL") {
            if protocol.trim() != "http/protobuf" {
                return Err(SettingError {
                    name,
                    value: protocol,
                    reason: "only http/protobuf is supported".into(),
                });
            }
        }
        let traces_endpoint = match (
            env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            env.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            _ if disabled => None,
            (Some(endpoint), _) => Some(endpoint.trim().to_owned()),
            (None, Some(base)) => Some(format!("{}/v1/traces", base.trim().trim_end_matches('/'))),
            (None, None) => None,
        };
        if let Some(endpoint) = &traces_endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(SettingError {
                    name: "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                    value: endpoint.clone(),
                    reason: "expected an http:// or https:// URL".into(),
                });
            }
        }
        let export_headers = match signal("HEADERS") {
            Some((name, text)) => key_values(&name, &text, false)?,
            None => Vec::new(),
        };
        let export_timeout = match signal("TIMEOUT") {
            Some((name, text)) => Some(
                text.trim()
                    .parse::<u64>()
                    .map(std::time::Duration::from_millis)
                    .map_err(|_| SettingError {
                        name,
                        value: text.clone(),
                        reason: "expected milliseconds".into(),
                    })?,
            ),
            None => None,
        };
        Ok(Self {
            service_name,
            filter,
            format,
            traces_endpoint,
            export_headers,
            export_timeout,
            resource_attributes,
            admin_listen: env.parse("VERDICT_ADMIN_LISTEN", DEFAULT_ADMIN_LISTEN)?,
        })
    }
}

/// `key=value` pairs separated by commas, values percent-encoded, as OpenTelemetry's
/// variables write them. A malformed pair is refused naming the variable; the text
/// itself is repeated only when it holds no secret.
fn key_values(
    name: &str,
    text: &str,
    repeat_text: bool,
) -> Result<Vec<(String, String)>, SettingError> {
    let refuse = |reason: &str| SettingError {
        name: name.to_owned(),
        value: if repeat_text {
            text.to_owned()
        } else {
            "(hidden)".to_owned()
        },
        reason: reason.to_owned(),
    };
    text.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| refuse("expected key=value pairs separated by commas"))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(refuse("a key is empty"));
            }
            let value = percent_encoding::percent_decode_str(value.trim())
                .decode_utf8()
                .map_err(|_| refuse("a value is not UTF-8 once percent-decoded"))?;
            Ok((key.to_owned(), value.into_owned()))
        })
        .collect()
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

impl TelemetryGuard {
    /// Exports the spans finished so far, which the exporter otherwise sends in batches
    /// every few seconds. Blocks until the collector answered.
    pub fn flush(&self) {
        if let Err(err) = self.provider.force_flush() {
            eprintln!("telemetry: flushing spans failed: {err}");
        }
    }
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
    let provider = match &settings.traces_endpoint {
        Some(endpoint) => {
            use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
            let mut exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(endpoint.clone())
                .with_headers(settings.export_headers.iter().cloned().collect());
            if let Some(timeout) = settings.export_timeout {
                exporter = exporter.with_timeout(timeout);
            }
            let exporter = exporter
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
    // Built from the settings alone: the SDK's own detectors would read the process
    // environment a second time.
    Resource::builder_empty()
        .with_attributes(
            settings
                .resource_attributes
                .iter()
                .map(|(key, value)| opentelemetry::KeyValue::new(key.clone(), value.clone())),
        )
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
        assert_eq!(settings.traces_endpoint, None);
        assert_eq!(settings.service_name, "x");
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
    fn an_otlp_endpoint_turns_export_on_at_the_traces_path() {
        let env = Env::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318/")]);
        let settings = TelemetrySettings::from_env(&env, "x").unwrap();
        assert_eq!(
            settings.traces_endpoint.as_deref(),
            Some("https://collector:4318/v1/traces")
        );
    }

    #[test]
    fn the_traces_endpoint_is_taken_as_it_is_and_wins_over_the_general_one() {
        let env = Env::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://general:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://traces:4318/custom",
            ),
        ]);
        let settings = TelemetrySettings::from_env(&env, "x").unwrap();
        assert_eq!(
            settings.traces_endpoint.as_deref(),
            Some("http://traces:4318/custom")
        );
    }

    #[test]
    fn a_disabled_sdk_exports_nothing() {
        let env = Env::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ]);
        let settings = TelemetrySettings::from_env(&env, "x").unwrap();
        assert_eq!(settings.traces_endpoint, None);
    }

    #[test]
    fn the_service_name_comes_from_otel_service_name_then_the_resource_attributes() {
        let env = Env::from_pairs([(
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=edge,deployment.environment=prod%20eu",
        )]);
        let settings = TelemetrySettings::from_env(&env, "gateway").unwrap();
        assert_eq!(settings.service_name, "edge");
        assert_eq!(
            settings.resource_attributes,
            [("deployment.environment".to_owned(), "prod eu".to_owned())]
        );
        let env = Env::from_pairs([
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=edge"),
            ("OTEL_SERVICE_NAME", "verdict-edge"),
        ]);
        let settings = TelemetrySettings::from_env(&env, "gateway").unwrap();
        assert_eq!(settings.service_name, "verdict-edge");
    }

    #[test]
    fn export_headers_are_read_decoded_and_never_shown() {
        let env = Env::from_pairs([
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-general=1"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "api-key=s%3Dcret, x-team=ci",
            ),
        ]);
        let settings = TelemetrySettings::from_env(&env, "x").unwrap();
        assert_eq!(
            settings.export_headers,
            [
                ("api-key".to_owned(), "s=cret".to_owned()),
                ("x-team".to_owned(), "ci".to_owned())
            ]
        );
        assert!(!format!("{settings:?}").contains("s=cret"));
        let env = Env::from_pairs([("OTEL_EXPORTER_OTLP_HEADERS", "api-key")]);
        let err = TelemetrySettings::from_env(&env, "x").unwrap_err();
        assert_eq!(err.name, "OTEL_EXPORTER_OTLP_HEADERS");
        assert!(!err.value.contains("api-key"));
    }

    #[test]
    fn a_protocol_other_than_http_protobuf_is_refused_by_name() {
        let env = Env::from_pairs([("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")]);
        let err = TelemetrySettings::from_env(&env, "x").unwrap_err();
        assert_eq!(err.name, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
        let env = Env::from_pairs([("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]);
        assert!(TelemetrySettings::from_env(&env, "x").is_ok());
    }

    #[test]
    fn an_export_timeout_is_read_in_milliseconds() {
        let env = Env::from_pairs([("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")]);
        let settings = TelemetrySettings::from_env(&env, "x").unwrap();
        assert_eq!(
            settings.export_timeout,
            Some(std::time::Duration::from_millis(2500))
        );
        let env = Env::from_pairs([("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon")]);
        let err = TelemetrySettings::from_env(&env, "x").unwrap_err();
        assert_eq!(err.name, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT");
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
