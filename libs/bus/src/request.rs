use std::time::Duration;

use async_nats::{Client, HeaderMap, RequestErrorKind};
use serde::{de::DeserializeOwned, Serialize};
use verdict_contracts::auth::Principal;
use verdict_contracts::{headers, ErrorCode, Operation, ServiceError};

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
}

/// A NATS client with the request defaults of this process.
#[derive(Debug, Clone)]
pub struct Bus {
    client: Client,
    request_timeout: Duration,
}

impl Bus {
    pub fn new(client: Client, request_timeout: Duration) -> Self {
        Self {
            client,
            request_timeout,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
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
        let request = async_nats::Request::new()
            .payload(payload.into())
            .headers(headers)
            .timeout(Some(self.request_timeout));
        let reply = self
            .client
            .send_request(subject.clone(), request)
            .await
            .map_err(|err| match err.kind() {
                RequestErrorKind::NoResponders => RequestError::NoResponders {
                    subject: subject.clone(),
                },
                RequestErrorKind::TimedOut => RequestError::TimedOut {
                    subject: subject.clone(),
                    timeout: self.request_timeout,
                },
                _ => RequestError::Transport {
                    subject: subject.clone(),
                    reason: err.to_string(),
                },
            })?;
        if let Some(error) = service_error(reply.headers.as_ref()) {
            return Err(RequestError::Service(error));
        }
        serde_json::from_slice(&reply.payload).map_err(|err| RequestError::Codec {
            subject,
            reason: err.to_string(),
        })
    }
}

/// The error a service put in the standard micro-service headers, if any.
fn service_error(headers: Option<&HeaderMap>) -> Option<ServiceError> {
    let headers = headers?;
    let code = headers.get(headers::SERVICE_ERROR_CODE)?;
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

    #[test]
    fn error_headers_decode_into_the_service_error() {
        let mut headers = HeaderMap::new();
        headers.insert(headers::SERVICE_ERROR_CODE, "404");
        headers.insert(headers::SERVICE_ERROR, "run not found");
        let error = service_error(Some(&headers)).unwrap();
        assert_eq!(error.code, ErrorCode::NotFound);
        assert_eq!(error.message, "run not found");
    }

    #[test]
    fn a_reply_without_error_headers_is_a_success() {
        let mut headers = HeaderMap::new();
        headers.insert(headers::TRACEPARENT, "00-00-00-00");
        assert!(service_error(Some(&headers)).is_none());
        assert!(service_error(None).is_none());
    }
}
