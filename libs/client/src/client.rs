//! The client and the one place requests are sent: authentication, idempotency keys,
//! retries and the decoding of answers and problems.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use reqwest::header::{HeaderMap, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::retry::{is_retryable_status, parse_retry_after, RetryPolicy};
use crate::{tls, Error, Problem};

/// The header a creating POST carries so that a repeat of it creates nothing twice.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A typed client of Verdict's HTTP API (`/api/v1`). Cheap to clone; clones share
/// connections.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Arc<Url>,
    token: Option<Arc<str>>,
    retry: RetryPolicy,
}

impl fmt::Debug for Client {
    /// Never shows the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("retry", &self.retry)
            .finish()
    }
}

/// How to build a [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    base_url: String,
    token: Option<String>,
    ca_cert: Option<PathBuf>,
    retry: RetryPolicy,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ca_cert", &self.ca_cert)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Sends `Authorization: Bearer <token>` (an access token or an API token).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Also trusts the certificates of this PEM file (a private CA), besides the
    /// system's roots.
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(path.into());
        self
    }

    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How long a connection may take to open.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long the server may stay silent while answering (not a bound on a whole
    /// transfer, so large uploads and downloads are not cut).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        let base = Url::parse(&self.base_url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| {
                Error::Config(format!(
                    "{:?} is not an http:// or https:// URL of a Verdict server",
                    self.base_url
                ))
            })?;
        if !base.username().is_empty() || base.password().is_some() {
            return Err(Error::Config(
                "the server URL must not hold credentials; give a token instead".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls::client_config(self.ca_cert.as_deref())?)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .user_agent(concat!("verdict-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| Error::Config(format!("cannot build the HTTP client: {err}")))?;
        Ok(Client {
            http,
            base: Arc::new(base),
            token: self.token.map(Arc::from),
            retry: self.retry,
        })
    }
}

/// Whether a call may be sent again after a failure that may or may not have reached
/// the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Sent once only.
    Never,
    /// Safe to repeat as it is (GET, PUT, DELETE, and POSTs that are idempotent by
    /// definition, such as completing an artifact).
    Idempotent,
    /// A creating POST: repeated with the same `Idempotency-Key`, a fresh UUIDv7 per
    /// logical call.
    Keyed(String),
}

impl Repeat {
    pub(crate) fn keyed() -> Self {
        Repeat::Keyed(uuid::Uuid::now_v7().to_string())
    }
}

/// What a request carries, in a form that can be sent again on a retry.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    Empty,
    Bytes {
        bytes: Bytes,
        content_type: Option<&'static str>,
        /// `gzip` when `bytes` are gzip-compressed.
        content_encoding: Option<&'static str>,
    },
    /// `len` bytes of a file from `offset`, streamed from disk on each attempt.
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
}

impl Payload {
    pub(crate) fn json(value: &impl Serialize) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(value)
            .map_err(|err| Error::Config(format!("cannot encode the request: {err}")))?;
        Ok(Payload::Bytes {
            bytes: bytes.into(),
            content_type: Some("application/json"),
            content_encoding: None,
        })
    }

    /// `bytes` of `content_type`, gzip-compressed for the wire (`Content-Encoding:
    /// gzip`): test results and reports are text that shrinks to a fraction.
    pub(crate) fn gzipped(bytes: &[u8], content_type: &'static str) -> Result<Self, Error> {
        let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
        encoder
            .write_all(bytes)
            .and_then(|()| encoder.finish())
            .map(|compressed| Payload::Bytes {
                bytes: compressed.into(),
                content_type: Some(content_type),
                content_encoding: Some("gzip"),
            })
            .map_err(|err| Error::Config(format!("cannot compress the request: {err}")))
    }

    /// A JSON document, gzip-compressed for the wire.
    pub(crate) fn json_gzipped(value: &impl Serialize) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(value)
            .map_err(|err| Error::Config(format!("cannot encode the request: {err}")))?;
        Self::gzipped(&bytes, "application/json")
    }

    async fn body(&self) -> Result<Option<(reqwest::Body, u64)>, Error> {
        match self {
            Payload::Empty => Ok(None),
            Payload::Bytes { bytes, .. } => Ok(Some((bytes.clone().into(), bytes.len() as u64))),
            Payload::File { path, offset, len } => {
                let opened = async {
                    let mut file = tokio::fs::File::open(path).await?;
                    file.seek(std::io::SeekFrom::Start(*offset)).await?;
                    Ok(file)
                };
                let file = opened.await.map_err(|source| Error::File {
                    path: path.clone(),
                    source,
                })?;
                let stream = tokio_util::io::ReaderStream::new(file.take(*len));
                Ok(Some((reqwest::Body::wrap_stream(stream), *len)))
            }
        }
    }
}

/// One request, ready to be sent as often as needed.
pub(crate) struct Call {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub payload: Payload,
    pub repeat: Repeat,
    /// Whether to send the client's token (never to a blob store's signed URL).
    pub authenticated: bool,
}

impl Client {
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            token: None,
            ca_cert: None,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(300),
        }
    }

    /// The same client (connections included) with another token.
    pub fn with_token(&self, token: impl Into<String>) -> Client {
        Client {
            token: Some(Arc::from(token.into())),
            ..self.clone()
        }
    }

    /// The same client (connections included) with another retry policy.
    pub fn with_retry(&self, policy: RetryPolicy) -> Client {
        Client {
            retry: policy,
            ..self.clone()
        }
    }

    /// The server's base URL, as given.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The URL of `segments` below the base URL, each segment percent-encoded.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = (*self.base).clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// The URL of an API path below `/api/v1`.
    pub(crate) fn api(&self, segments: &[&str]) -> Url {
        let mut all = vec!["api", "v1"];
        all.extend_from_slice(segments);
        self.url(&all)
    }

    pub(crate) fn call(&self, method: Method, url: Url, repeat: Repeat) -> Call {
        Call {
            method,
            url,
            headers: HeaderMap::new(),
            payload: Payload::Empty,
            repeat,
            authenticated: true,
        }
    }

    /// Sends a call and decodes its JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T, Error> {
        let (method, path) = (call.method.to_string(), call.url.path().to_owned());
        let body = self.bytes(call).await?;
        serde_json::from_slice(&body).map_err(|err| Error::Decode {
            method,
            path,
            reason: err.to_string(),
        })
    }

    /// Sends a call and answers the body of its answer.
    pub(crate) async fn bytes(&self, call: Call) -> Result<Bytes, Error> {
        let (method, path) = (call.method.to_string(), call.url.path().to_owned());
        let response = self.send(call).await?;
        response.bytes().await.map_err(|err| Error::Decode {
            method,
            path,
            reason: err.to_string(),
        })
    }

    /// Sends a call whose answer has no body worth reading.
    pub(crate) async fn empty(&self, call: Call) -> Result<(), Error> {
        self.send(call).await.map(drop)
    }

    /// Sends a call, again after failures that may pass while its repeat allows and the
    /// retry budget lasts; answers the first success (or redirection).
    pub(crate) async fn send(&self, call: Call) -> Result<reqwest::Response, Error> {
        let started = Instant::now();
        let mut retries = 0;
        loop {
            let (error, retry_after) = match self.attempt(&call).await {
                Ok(response) if !is_error(response.status()) => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let problem = read_problem(response).await;
                    let retry_after = problem.retry_after;
                    let error = Error::Api {
                        method: call.method.to_string(),
                        path: call.url.path().to_owned(),
                        problem: Box::new(problem),
                    };
                    if !is_retryable_status(status) {
                        return Err(error);
                    }
                    (error, retry_after)
                }
                Err(error @ Error::Transport { .. }) => (error, None),
                Err(error) => return Err(error),
            };
            if call.repeat == Repeat::Never {
                return Err(error);
            }
            retries += 1;
            let wait = self.retry.delay(retries, retry_after, rand::random());
            if started.elapsed() + wait > self.retry.budget {
                return Err(error);
            }
            tracing::debug!(%error, ?wait, retries, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, call: &Call) -> Result<reqwest::Response, Error> {
        let mut request = self
            .http
            .request(call.method.clone(), call.url.clone())
            .headers(call.headers.clone());
        if call.authenticated {
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
        }
        if let Repeat::Keyed(key) = &call.repeat {
            request = request.header(IDEMPOTENCY_KEY, key.as_str());
        }
        if let Payload::Bytes {
            content_type,
            content_encoding,
            ..
        } = &call.payload
        {
            if let Some(content_type) = content_type {
                request = request.header(CONTENT_TYPE, *content_type);
            }
            if let Some(content_encoding) = content_encoding {
                request = request.header(CONTENT_ENCODING, *content_encoding);
            }
        }
        if let Some((body, len)) = call.payload.body().await? {
            request = request.header(CONTENT_LENGTH, len).body(body);
        }
        request.send().await.map_err(|err| Error::Transport {
            method: call.method.to_string(),
            url: without_query(&call.url),
            reason: describe(&err),
        })
    }
}

fn is_error(status: StatusCode) -> bool {
    status.is_client_error() || status.is_server_error()
}

async fn read_problem(response: reqwest::Response) -> Problem {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, SystemTime::now()));
    let body = response.bytes().await.unwrap_or_default();
    Problem::from_response(status, &body, retry_after)
}

fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

/// A transport error with its causes (reqwest's own message hides them: "error
/// sending request" says nothing of the refused connection or the bad certificate).
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_connect() {
        "cannot connect".to_owned()
    } else if err.is_timeout() {
        "timed out".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
