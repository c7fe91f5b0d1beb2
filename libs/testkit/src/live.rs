//! A WebSocket viewer of `GET /api/v1/live`, as a browser or a dashboard would be.

use std::io::Read;
use std::time::Duration;

use flate2::read::DeflateDecoder;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct LiveClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Opened with `encoding=deflate`: every server message must be compressed JSON.
    deflated: bool,
}

/// What the server did next.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Json(Value),
    Closed(Option<u16>),
    /// Nothing within the wait.
    Silent,
}

impl LiveClient {
    /// Opens `GET /api/v1/live` on the gateway at `base` (`http://host:port`), with the
    /// token in the `Authorization` header when given.
    pub async fn connect(base: &str, token: Option<&str>) -> Result<Self, tungstenite::Error> {
        Self::open(base, token, "").await
    }

    /// As [`LiveClient::connect`], asking for `encoding=deflate`: the messages this
    /// client returns were inflated, and a message that was not compressed panics.
    pub async fn connect_deflated(
        base: &str,
        token: Option<&str>,
    ) -> Result<Self, tungstenite::Error> {
        Self::open(base, token, "?encoding=deflate").await
    }

    /// Opens `GET /api/v1/live` with `query` (empty, or starting with `?`).
    pub async fn open(
        base: &str,
        token: Option<&str>,
        query: &str,
    ) -> Result<Self, tungstenite::Error> {
        let url = format!("{}/api/v1/live{query}", base.replacen("http", "ws", 1));
        let mut request = url.into_client_request()?;
        if let Some(token) = token {
            let value = format!("Bearer {token}")
                .parse()
                .expect("a header-safe token");
            request.headers_mut().insert("authorization", value);
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self {
            socket,
            deflated: query.contains("encoding=deflate"),
        })
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("send a live message");
    }

    pub async fn send_raw(&mut self, message: Message) -> Result<(), tungstenite::Error> {
        self.socket.send(message).await
    }

    pub async fn subscribe(&mut self, channel: &str, since: Option<u64>) {
        let mut message = json!({ "type": "subscribe", "channel": channel });
        if let Some(since) = since {
            message["since"] = json!(since);
        }
        self.send(message).await;
    }

    /// The next JSON message, close or silence within `wait`; pings are answered by the
    /// library and skipped here.
    pub async fn next(&mut self, wait: Duration) -> Received {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return Received::Silent,
                Ok(None) | Ok(Some(Err(_))) => return Received::Closed(None),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    assert!(!self.deflated, "a text message on a deflate socket: {text}");
                    return Received::Json(
                        serde_json::from_str(&text).expect("JSON from the gateway"),
                    );
                }
                Message::Binary(bytes) if self.deflated => {
                    let mut text = String::new();
                    DeflateDecoder::new(&bytes[..])
                        .read_to_string(&mut text)
                        .expect("raw DEFLATE of UTF-8 from the gateway");
                    return Received::Json(
                        serde_json::from_str(&text).expect("JSON from the gateway"),
                    );
                }
                Message::Close(frame) => {
                    return Received::Closed(frame.map(|CloseFrame { code, .. }| code.into()))
                }
                _ => continue,
            }
        }
    }

    /// The next JSON message; panics on close or after `wait`.
    pub async fn json(&mut self, wait: Duration) -> Value {
        match self.next(wait).await {
            Received::Json(value) => value,
            other => panic!("expected a live message, got {other:?}"),
        }
    }

    /// Reads until the socket closes; returns the close code and the last error frame.
    pub async fn closed(&mut self, wait: Duration) -> (Option<u16>, Option<Value>) {
        let mut error = None;
        loop {
            match self.next(wait).await {
                Received::Json(value) if value["type"] == "error" => error = Some(value),
                Received::Json(_) => {}
                Received::Closed(code) => return (code, error),
                Received::Silent => panic!("the socket stayed open for {wait:?}"),
            }
        }
    }
}
