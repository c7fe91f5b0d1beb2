use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::path::Path;

use async_nats::{Client, HeaderMap};
use bytes::Bytes;
use futures::StreamExt;
use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use verdict_contracts::auth::Principal;
use verdict_contracts::system::{self, VersionInfo};
use verdict_contracts::{headers, Caller, Operation, ProcessKind, ServiceError, ServiceName};

use crate::presence::Presence;
use crate::BusError;

/// Requests one endpoint handles at once on one instance; further requests wait in
/// the subscription's buffer, which bounds memory under a burst.
const MAX_IN_FLIGHT_PER_ENDPOINT: usize = 256;
/// How long shutdown waits for in-flight handlers before draining the connection.
const HANDLER_GRACE: Duration = Duration::from_secs(10);
/// The longest `Nats-Service-Error` summary, in bytes; the whole message is in the body.
const ERROR_SUMMARY_BYTES: usize = 256;

/// One decoded request.
#[derive(Debug)]
struct Call<Req> {
    body: Req,
    headers: Option<HeaderMap>,
}

impl<Req> Call<Req> {
    /// The caller the gateway authenticated; a request without one is refused.
    fn principal(&self) -> Result<Principal, ServiceError> {
        let value = self
            .headers
            .as_ref()
            .and_then(|headers| headers.get(headers::PRINCIPAL))
            .ok_or_else(|| ServiceError::unauthorized("authentication required"))?;
        serde_json::from_str(value.as_str()).map_err(|err| {
            tracing::warn!(error = %err, "malformed principal header");
            ServiceError::unauthorized("authentication required")
        })
    }
}

/// A service instance on the bus: registered through the NATS micro-service protocol
/// (so `$SRV.PING/INFO/STATS` see it, see [`Presence`]), one queue group per service, a
/// `version` endpoint, and graceful shutdown that finishes in-flight requests before
/// draining.
pub struct ServiceHost {
    client: Client,
    name: ServiceName,
    presence: Presence,
    listeners: TaskTracker,
    handlers: TaskTracker,
}

impl ServiceHost {
    /// Registers the service and its `version` endpoint; writes the instance id to
    /// `instance_file` (`VERDICT_INSTANCE_FILE`) for `verdict healthcheck`.
    pub async fn start(
        client: Client,
        name: ServiceName,
        version: &str,
        instance_file: Option<&Path>,
    ) -> Result<Self, BusError> {
        let presence =
            Presence::register(&client, ProcessKind::Service(name), version, instance_file).await?;
        crate::metrics::describe();
        let mut host = Self {
            client,
            name,
            presence,
            listeners: TaskTracker::new(),
            handlers: TaskTracker::new(),
        };
        let info = VersionInfo {
            service: name.as_str().to_owned(),
            version: version.to_owned(),
        };
        host.with_state(info)
            .for_service(system::version(name), |info, _: system::Empty| async move {
                Ok::<_, ServiceError>(info)
            })
            .await?;
        Ok(host)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The one way to add endpoints: each handler gets a clone of `state`.
    pub fn with_state<S: Clone + Send + Sync + 'static>(&mut self, state: S) -> Endpoints<'_, S> {
        Endpoints { host: self, state }
    }

    /// Serves `operation` with `handler`. Each request runs in its own task inside a span
    /// whose parent is the caller's trace context.
    async fn register<Req, Resp, H, Fut>(
        &mut self,
        operation: Operation<Req, Resp>,
        handler: H,
    ) -> Result<(), BusError>
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        H: Fn(Call<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, ServiceError>> + Send + 'static,
    {
        let subject = operation.subject();
        let mut endpoint = self
            .presence
            .service()
            .endpoint_builder()
            .name(operation.name)
            .add(subject.clone())
            .await
            .map_err(|err| BusError::Register {
                what: subject.clone(),
                reason: err,
            })?;
        let handler = Arc::new(handler);
        let handlers = self.handlers.clone();
        let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_ENDPOINT));
        let service = self.name.as_str();
        let operation_name = operation.name;
        self.listeners.spawn(async move {
            while let Some(request) = endpoint.next().await {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let handler = handler.clone();
                let span = tracing::info_span!(
                    "bus.handle",
                    otel.name = %subject,
                    otel.kind = "server",
                    service,
                    subject = %subject,
                );
                // Fails only when no OpenTelemetry layer is installed: nothing to link then.
                let _ = span.set_parent(crate::trace::extract(request.message.headers.as_ref()));
                handlers.spawn(
                    async move {
                        let started = Instant::now();
                        let answer = match decode(&request.message.payload) {
                            Ok(body) => {
                                let headers = request.message.headers.clone();
                                handler(Call { body, headers }).await.and_then(encode)
                            }
                            Err(error) => Err(error),
                        };
                        let outcome = answer.as_ref().map_or_else(|error| error.code.as_str(), |_| "ok");
                        let (payload, reply_headers) = match answer {
                            Ok(payload) => (payload, HeaderMap::new()),
                            Err(error) => {
                                tracing::debug!(code = error.code.status(), error = %error.message, "request refused");
                                error_reply(&error)
                            }
                        };
                        if let Err(err) = request.respond_with_headers(Ok(payload), reply_headers).await {
                            tracing::warn!(error = %err, "could not send the reply");
                        }
                        drop(permit);
                        metrics::histogram!(
                            crate::metrics::BUS_REQUEST_DURATION,
                            "service" => service,
                            "operation" => operation_name,
                            "outcome" => outcome,
                        )
                        .record(started.elapsed().as_secs_f64());
                    }
                    .instrument(span),
                );
            }
        });
        Ok(())
    }

    /// Serves until `shutdown` fires, then stops taking requests, lets the ones in
    /// flight finish (up to a grace period) and drains the connection.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), BusError> {
        shutdown.cancelled().await;
        tracing::info!(service = %self.name, "stopping: no new requests");
        // Stopping unsubscribes every endpoint; each listener then ends once the
        // subscription's buffer is empty.
        self.presence.leave().await;
        self.listeners.close();
        self.handlers.close();
        let finished = async {
            self.listeners.wait().await;
            self.handlers.wait().await;
        };
        if tokio::time::timeout(HANDLER_GRACE, finished).await.is_err() {
            tracing::warn!(service = %self.name, "handlers still running after the grace period");
        }
        self.client.drain().await.map_err(BusError::Drain)
    }
}

/// Registers endpoints whose handlers share a service's state (see
/// [`ServiceHost::with_state`]). Each request runs in its own task inside a span whose
/// parent is the caller's trace context; the handler's error becomes the reply's
/// service error through the crate's one mapping (`Into<ServiceError>`).
pub struct Endpoints<'h, S> {
    host: &'h mut ServiceHost,
    state: S,
}

impl<S: Clone + Send + Sync + 'static> Endpoints<'_, S> {
    /// Serves `operation` on behalf of the principal the gateway established; a
    /// request without one is refused before `handler` runs.
    pub async fn for_principal<Req, Resp, E, H, Fut>(
        &mut self,
        operation: Operation<Req, Resp>,
        handler: H,
    ) -> Result<(), BusError>
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        E: Into<ServiceError>,
        H: Fn(S, Principal, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, E>> + Send + 'static,
    {
        if operation.caller != Caller::Gateway {
            // Only gateways may publish where a principal is trusted (bus_access).
            return Err(BusError::Register {
                what: operation.subject(),
                reason: "a service operation never acts on behalf of a principal".into(),
            });
        }
        let state = self.state.clone();
        self.host
            .register(operation, move |call: Call<Req>| {
                let principal = call.principal();
                let answer =
                    principal.map(|principal| handler(state.clone(), principal, call.body));
                async move { answer?.await.map_err(Into::into) }
            })
            .await
    }

    /// Serves `operation` for whoever may send it (another service, or a gateway
    /// before anyone signed in).
    pub async fn for_service<Req, Resp, E, H, Fut>(
        &mut self,
        operation: Operation<Req, Resp>,
        handler: H,
    ) -> Result<(), BusError>
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        E: Into<ServiceError>,
        H: Fn(S, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, E>> + Send + 'static,
    {
        let state = self.state.clone();
        self.host
            .register(operation, move |call: Call<Req>| {
                let answer = handler(state.clone(), call.body);
                async move { answer.await.map_err(Into::into) }
            })
            .await
    }
}

/// An error reply: the whole error as JSON in the body, where any message fits, and the
/// standard micro-service headers (the code, and a summary made safe for a header) so
/// that other NATS tools see an error. The body goes out on the success path of
/// async-nats, whose error path sends headers only; so `$SRV.STATS` counts these replies
/// as requests but not as errors.
fn error_reply(error: &ServiceError) -> (Bytes, HeaderMap) {
    let mut reply_headers = HeaderMap::new();
    reply_headers.insert(
        headers::SERVICE_ERROR_CODE,
        error.code.status().to_string().as_str(),
    );
    reply_headers.insert(headers::SERVICE_ERROR, header_text(&error.message).as_str());
    if let Some(seconds) = error.retry_after {
        reply_headers.insert(headers::RETRY_AFTER, seconds.to_string().as_str());
    }
    let body = serde_json::to_vec(error).unwrap_or_else(|err| {
        tracing::error!(error = %err, "could not encode an error reply");
        Vec::new()
    });
    (Bytes::from(body), reply_headers)
}

/// `text` as one line a header can carry: control characters (line breaks above all,
/// which would end the header) become spaces, and it is cut to [`ERROR_SUMMARY_BYTES`]
/// on a character boundary.
fn header_text(text: &str) -> String {
    let mut line = String::with_capacity(text.len().min(ERROR_SUMMARY_BYTES));
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if line.len() + c.len_utf8() > ERROR_SUMMARY_BYTES {
            break;
        }
        line.push(c);
    }
    line
}

fn decode<Req: DeserializeOwned>(payload: &Bytes) -> Result<Req, ServiceError> {
    // An empty payload is an empty object, so requests without a body stay cheap.
    let payload: &[u8] = if payload.is_empty() { b"{}" } else { payload };
    serde_json::from_slice(payload)
        .map_err(|err| ServiceError::bad_request(format!("malformed request: {err}")))
}

fn encode<Resp: Serialize>(response: Resp) -> Result<Bytes, ServiceError> {
    serde_json::to_vec(&response)
        .map(Bytes::from)
        .map_err(|err| {
            tracing::error!(error = %err, "could not encode a response");
            ServiceError::internal()
        })
}

#[cfg(test)]
mod tests {
    use async_nats::header::HeaderValue;
    use verdict_contracts::ErrorCode;

    use super::*;

    fn header<'a>(reply_headers: &'a HeaderMap, name: &str) -> &'a str {
        reply_headers
            .get(name)
            .map(HeaderValue::as_str)
            .unwrap_or("")
    }

    #[test]
    fn an_error_reply_carries_the_whole_error_in_its_body() {
        let error = ServiceError::too_many_requests("slow down\nplease", 3);
        let (body, _) = error_reply(&error);
        let sent: ServiceError = serde_json::from_slice(&body).unwrap();
        assert_eq!(sent, error);
    }

    #[test]
    fn an_error_reply_sets_the_standard_headers_with_a_one_line_summary() {
        let message = format!("attributes.a\r\nb: {}", "v".repeat(2000));
        let (_, reply_headers) = error_reply(&ServiceError::bad_request(message));
        assert_eq!(header(&reply_headers, headers::SERVICE_ERROR_CODE), "400");
        let summary = header(&reply_headers, headers::SERVICE_ERROR);
        assert!(summary.starts_with("attributes.a  b: vvv"), "{summary}");
        assert_eq!(summary.len(), ERROR_SUMMARY_BYTES);
    }

    #[test]
    fn a_header_summary_has_no_control_characters_and_cuts_on_a_character_boundary() {
        let text = format!("{}é\0\u{7f}\t", "x".repeat(ERROR_SUMMARY_BYTES - 1));
        let summary = header_text(&text);
        assert_eq!(summary, "x".repeat(ERROR_SUMMARY_BYTES - 1));
        assert_eq!(header_text("a\0b\u{1b}c\td"), "a b c d");
    }

    #[test]
    fn a_retry_after_travels_in_its_header_too_for_older_callers() {
        let (_, reply_headers) = error_reply(&ServiceError::too_many_requests("wait", 7));
        assert_eq!(header(&reply_headers, headers::RETRY_AFTER), "7");
        let (_, reply_headers) = error_reply(&ServiceError::new(ErrorCode::NotFound, "gone"));
        assert!(reply_headers.get(headers::RETRY_AFTER).is_none());
    }
}
