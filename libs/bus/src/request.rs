use std::time::Duration;

use async_nats::{Client, HeaderMap, RequestErrorKind};
use serde::{de::DeserializeOwned, Serialize};
use verdict_contracts::auth::Principal;
use verdict_contracts::{headers, ErrorCode, Operation, ServiceError};

use crate::backoff::{retry_within, Pauses};
use crate::BusSettings;

/// Pauses before an idempotent request (or a durable publish) is sent again.
const RETRY_PAUSES: Pauses = Pauses {
    first: Duration::from_millis(20),
    max: Duration::from_millis(500),
};

/// Why a request/reply call did not produce an answer of the expected type.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Nobody serves the subject: the service is down or restarting.
    #[error("no responders on {subject}")]
    NoResponders { subject: String },
    /// A responder exists but did not answer in time.
    #[error("{subject} did not answer within {timeout:?}")]
    TimedOut { subject: String, timeout: Duration },
    /// The service answered with an error.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The answer or the request could not be (de)serialized.
    #[error("malformed message on {subject}: {reason}")]
    Codec { subject: String, reason: String },
    /// The connection failed while sending.
    #[error("request on {subject} failed: {reason}")]
    Transport { subject: String, reason: String },
    /// The stream that captures `subject` holds all it may (its byte limit, or the
    /// server's storage): it refuses new messages until its consumer catches up.
    #[error("the stream of {subject} is full: {reason}")]
    StreamFull { subject: String, reason: String },
}

/// A NATS client with the request defaults of this process.
///
/// An idempotent operation that meets "no responders" (no instance of its service is
/// subscribed: it is restarting or being upgraded) is sent again, with growing pauses,
/// until it is answered or the retry budget is spent; callers never see the gap. One
/// that times out is asked once more, with a budget of its own: core NATS delivers at
/// most once, so a request that reaches an instance just as it unsubscribes (a restart,
/// a scale-down) or dies is lost, and only the caller can tell. More attempts would only
/// multiply the load on a service that is slow rather than gone. A command is never
/// repeated here: its caller decides.
#[derive(Debug, Clone)]
pub struct Bus {
    client: Client,
    jetstream: async_nats::jetstream::Context,
    request_timeout: Duration,
    retry_budget: Duration,
}

impl Bus {
    pub fn new(client: Client, settings: &BusSettings) -> Self {
        let mut jetstream = async_nats::jetstream::new(client.clone());
        jetstream.set_timeout(settings.request_timeout);
        Self {
            client,
            jetstream,
            request_timeout: settings.request_timeout,
            retry_budget: settings.retry_budget,
        }
    }

    /// The same bus with another request timeout, for the few operations that are
    /// known to take longer than usual.
    pub fn with_timeout(&self, request_timeout: Duration) -> Self {
        Self {
            request_timeout,
            ..self.clone()
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Stores `payload` in the JetStream stream that captures `subject` and waits for
    /// the stream's acknowledgement. The stream de-duplicates by `message_id`, so sending
    /// again is harmless: while the stream cannot take the message (its leader is being
    /// elected after a node died, or an earlier attempt with the same id, from a client's
    /// retry, is still being stored) it is sent again, with growing pauses, within the
    /// retry budget. A full stream is reported at once: it empties only as fast as its
    /// consumer works, which no short retry outwaits.
    pub async fn publish_durable(
        &self,
        subject: &str,
        payload: bytes::Bytes,
        message_id: &str,
    ) -> Result<(), RequestError> {
        let headers = crate::trace::current_headers();
        let attempt = || async {
            let message = async_nats::jetstream::message::PublishMessage::build()
                .payload(payload.clone())
                .headers(headers.clone())
                .message_id(message_id);
            match self
                .jetstream
                .send_publish(subject.to_owned(), message)
                .await
            {
                Ok(ack) => ack.await.map(drop),
                Err(err) => Err(err),
            }
            .map_err(|err| (stream_is_full(&err), err.to_string()))
        };
        retry_within(
            self.retry_budget,
            RETRY_PAUSES,
            attempt,
            |(full, _)| !full,
            |(_, reason), pause| {
                tracing::debug!(%subject, %reason, ?pause, "stream did not take the message, retrying");
            },
        )
        .await
        .map_err(|(full, reason)| {
            let subject = subject.to_owned();
            if full {
                RequestError::StreamFull { subject, reason }
            } else {
                RequestError::Transport { subject, reason }
            }
        })
    }

    /// Sends `body` to `operation` and decodes the typed answer, carrying the current
    /// trace context.
    pub async fn request<Req, Resp>(
        &self,
        operation: &Operation<Req, Resp>,
        body: &Req,
    ) -> Result<Resp, RequestError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        self.request_with_headers(operation, body, HeaderMap::new())
            .await
    }

    /// Like [`Bus::request`], on behalf of `principal`.
    pub async fn request_as<Req, Resp>(
        &self,
        operation: &Operation<Req, Resp>,
        body: &Req,
        principal: &Principal,
    ) -> Result<Resp, RequestError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let mut headers = HeaderMap::new();
        let principal = serde_json::to_string(principal).map_err(|err| RequestError::Codec {
            subject: operation.subject(),
            reason: err.to_string(),
        })?;
        headers.insert(headers::PRINCIPAL, principal.as_str());
        self.request_with_headers(operation, body, headers).await
    }

    /// Like [`Bus::request`], with extra headers.
    pub async fn request_with_headers<Req, Resp>(
        &self,
        operation: &Operation<Req, Resp>,
        body: &Req,
        mut headers: HeaderMap,
    ) -> Result<Resp, RequestError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let subject = operation.subject();
        let payload = serde_json::to_vec(body).map_err(|err| RequestError::Codec {
            subject: subject.clone(),
            reason: err.to_string(),
        })?;
        crate::trace::inject_current(&mut headers);
        let payload = bytes::Bytes::from(payload);
        let ask = || {
            retry_within(
                self.retry_budget,
                RETRY_PAUSES,
                || self.send_once(&subject, payload.clone(), headers.clone()),
                |error| operation.idempotent && matches!(error, RequestError::NoResponders { .. }),
                |_, pause| tracing::debug!(%subject, ?pause, "no responders, retrying"),
            )
        };
        let reply = match ask().await {
            Err(RequestError::TimedOut { .. }) if operation.idempotent => {
                tracing::debug!(%subject, "no answer in time, asking once more");
                ask().await
            }
            answered => answered,
        }?;
        if let Some(error) = service_error(reply.headers.as_ref(), &reply.payload) {
            return Err(RequestError::Service(error));
        }
        serde_json::from_slice(&reply.payload).map_err(|err| RequestError::Codec {
            subject,
            reason: err.to_string(),
        })
    }
}

impl Bus {
    async fn send_once(
        &self,
        subject: &str,
        payload: bytes::Bytes,
        headers: HeaderMap,
    ) -> Result<async_nats::Message, RequestError> {
        let request = async_nats::Request::new()
            .payload(payload)
            .headers(headers)
            .timeout(Some(self.request_timeout));
        self.client
            .send_request(subject.to_owned(), request)
            .await
            .map_err(|err| request_error(subject, self.request_timeout, &err))
    }
}

/// What a failed `send_request` on `subject` with `timeout` means to a caller.
pub(crate) fn request_error(
    subject: &str,
    timeout: Duration,
    err: &async_nats::RequestError,
) -> RequestError {
    let subject = subject.to_owned();
    match err.kind() {
        RequestErrorKind::NoResponders => RequestError::NoResponders { subject },
        RequestErrorKind::TimedOut => RequestError::TimedOut { subject, timeout },
        _ => RequestError::Transport {
            subject,
            reason: err.to_string(),
        },
    }
}

/// Whether JetStream refused a message because its stream is full (a byte or message
/// limit with `DiscardNew`, or no storage left).
fn stream_is_full(error: &async_nats::jetstream::context::PublishError) -> bool {
    use async_nats::jetstream::ErrorCode;
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<async_nats::jetstream::Error>())
        .is_some_and(|error| {
            matches!(
                error.error_code(),
                ErrorCode::STREAM_STORE_FAILED | ErrorCode::INSUFFICIENT_RESOURCES
            )
        })
}

/// The error a reply carries, if any: a reply is an error when it has the standard
/// `Nats-Service-Error-Code` header, and the error itself is its JSON body. A reply of
/// an older service has no body and the message in the `Nats-Service-Error` header.
fn service_error(headers: Option<&HeaderMap>, payload: &[u8]) -> Option<ServiceError> {
    let headers = headers?;
    let code = headers.get(headers::SERVICE_ERROR_CODE)?;
    if let Ok(error) = serde_json::from_slice::<ServiceError>(payload) {
        return Some(error);
    }
    let status = code.as_str().parse::<u16>().unwrap_or(500);
    let message = headers
        .get(headers::SERVICE_ERROR)
        .map(|value| value.as_str().to_owned())
        .unwrap_or_default();
    let retry_after = headers
        .get(headers::RETRY_AFTER)
        .and_then(|value| value.as_str().parse().ok());
    Some(ServiceError {
        retry_after,
        ..ServiceError::new(ErrorCode::from_status(status), message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_headers(code: &str, summary: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(headers::SERVICE_ERROR_CODE, code);
        headers.insert(headers::SERVICE_ERROR, summary);
        headers
    }

    #[test]
    fn an_error_reply_decodes_from_its_body_whatever_its_message_holds() {
        let error = ServiceError {
            retry_after: Some(2),
            ..ServiceError::bad_request(format!("attributes.a\nb: {}", "v".repeat(2000)))
        };
        let body = serde_json::to_vec(&error).unwrap();
        let headers = error_headers("400", "attributes.a b: vvv");
        assert_eq!(service_error(Some(&headers), &body), Some(error));
    }

    #[test]
    fn an_older_services_error_decodes_from_its_headers() {
        let mut headers = error_headers("429", "slow down");
        headers.insert(headers::RETRY_AFTER, "3");
        let error = service_error(Some(&headers), b"").unwrap();
        assert_eq!(error.code, ErrorCode::TooManyRequests);
        assert_eq!(error.message, "slow down");
        assert_eq!(error.retry_after, Some(3));
    }

    #[test]
    fn an_error_whose_body_is_not_an_error_document_falls_back_to_its_headers() {
        let headers = error_headers("404", "run not found");
        let error = service_error(Some(&headers), b"not json").unwrap();
        assert_eq!(error.code, ErrorCode::NotFound);
        assert_eq!(error.message, "run not found");
    }

    #[test]
    fn a_reply_without_error_headers_is_a_success() {
        let mut headers = HeaderMap::new();
        headers.insert(headers::TRACEPARENT, "00-00-00-00");
        let body = serde_json::to_vec(&ServiceError::bad_request("looks like one")).unwrap();
        assert!(service_error(Some(&headers), &body).is_none());
        assert!(service_error(None, &body).is_none());
    }
}
