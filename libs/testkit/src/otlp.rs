//! An OTLP/HTTP receiver on a free loopback port, as a collector would be: it takes the
//! spans this process's telemetry exports over HTTP, so a test sees what an operator's
//! collector would.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use verdict_telemetry::{LogFormat, TelemetryGuard, TelemetrySettings};

/// The largest export accepted.
const MAX_EXPORT_BYTES: usize = 16 * 1024 * 1024;

/// Spans received so far, with the `service.name` of their resource.
#[derive(Debug, Clone, Default)]
pub struct OtlpReceiver {
    url: String,
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let receiver = Self {
            url: format!("http://{}/v1/traces", listener.local_addr().unwrap()),
            spans: Arc::default(),
        };
        let spans = receiver.spans.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, spans.clone()));
            }
        });
        receiver
    }

    /// The traces endpoint (`…/v1/traces`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn spans(&self) -> Vec<(String, Span)> {
        self.spans.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Installs telemetry for this test process exporting to this receiver over OTLP/HTTP,
    /// as `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` would. Spans arrive in batches; dropping
    /// the guard sends the rest.
    pub fn export_here(&self, service_name: &str) -> TelemetryGuard {
        let settings = TelemetrySettings {
            service_name: service_name.into(),
            filter: "info".into(),
            format: LogFormat::Pretty,
            traces_endpoint: Some(self.url.clone()),
            export_headers: vec![("x-collector-key".into(), "test".into())],
            export_timeout: None,
            resource_attributes: Vec::new(),
            admin_listen: verdict_telemetry::DEFAULT_ADMIN_LISTEN,
        };
        verdict_telemetry::init(&settings).expect("no other subscriber in this test process")
    }
}

/// Answers HTTP/1.1 exports on one connection until it closes.
async fn serve(stream: TcpStream, spans: Arc<Mutex<Vec<(String, Span)>>>) {
    let mut stream = BufReader::new(stream);
    loop {
        let mut length = None;
        let mut line = String::new();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let Some(length) = length.filter(|length| *length <= MAX_EXPORT_BYTES) else {
            let _ = stream
                .get_mut()
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            return;
        };
        let mut body = vec![0; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let status = match ExportTraceServiceRequest::decode(body.as_slice()) {
            Ok(export) => {
                let mut received = spans.lock().unwrap_or_else(|p| p.into_inner());
                for resource_spans in export.resource_spans {
                    let service = resource_spans
                        .resource
                        .iter()
                        .flat_map(|resource| &resource.attributes)
                        .find(|attribute| attribute.key == "service.name")
                        .and_then(|attribute| attribute.value.as_ref())
                        .and_then(|value| match &value.value {
                            Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(name)) => Some(name.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    for scope_spans in resource_spans.scope_spans {
                        received.extend(
                            scope_spans
                                .spans
                                .into_iter()
                                .map(|span| (service.clone(), span)),
                        );
                    }
                }
                "200 OK"
            }
            Err(_) => "400 Bad Request",
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
        );
        if stream.get_mut().write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}
