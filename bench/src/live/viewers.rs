//! Viewers that count what they receive: of Verdict's gateway (`/api/v1/live`) and of
//! nats-server's own WebSocket listener (the NATS protocol over WebSocket).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// What all viewers of one phase received.
#[derive(Default)]
pub struct Tally {
    pub ready: AtomicU64,
    pub frames: AtomicU64,
    pub lagged: AtomicU64,
    pub closed: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
}

impl Tally {
    pub fn latencies(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.latencies.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Counts a frame; a sampling viewer also times it against the 202 of its batch.
    fn frame(&self, text: &[u8], sample: bool, acks: &[OnceLock<Instant>]) {
        let received = Instant::now();
        self.frames.fetch_add(1, Ordering::Relaxed);
        if !sample {
            return;
        }
        let Some(batch) = batch_of(text) else { return };
        if let Some(acked) = acks.get(batch).and_then(OnceLock::get) {
            let latency = received.saturating_duration_since(*acked);
            self.latencies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(latency);
        }
    }
}

/// The batch number in a `test.finished` frame: tests are named `b<batch>-<n>`.
fn batch_of(frame: &[u8]) -> Option<usize> {
    const MARK: &[u8] = b"\"name\":\"b";
    let start = frame.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let digits = frame[start..].iter().take_while(|b| b.is_ascii_digit());
    let mut batch = 0usize;
    let mut any = false;
    for digit in digits {
        batch = batch * 10 + usize::from(digit - b'0');
        any = true;
    }
    any.then_some(batch)
}

/// Small buffers: ten thousand viewers share the load generator's memory.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
}

pub struct Viewer {
    pub tally: Arc<Tally>,
    pub acks: Arc<Vec<OnceLock<Instant>>>,
    pub sample: bool,
}

impl Viewer {
    /// Watches `channel` on a Verdict gateway until the socket closes.
    pub async fn verdict(self, base: String, token: String, channel: String) -> anyhow::Result<()> {
        let mut request =
            format!("{}/api/v1/live", base.replacen("http", "ws", 1)).into_client_request()?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(config()), true).await?;
        let subscribe = serde_json::json!({ "type": "subscribe", "channel": channel });
        socket.send(Message::text(subscribe.to_string())).await?;
        let first = socket.next().await.context("closed before subscribed")??;
        if !first
            .to_text()
            .unwrap_or_default()
            .contains("\"subscribed\"")
        {
            bail!("not subscribed: {first}");
        }
        self.tally.ready.fetch_add(1, Ordering::Relaxed);
        while let Some(message) = socket.next().await {
            match message? {
                Message::Text(text) => {
                    if text.as_str().starts_with("{\"type\":\"lagged\"") {
                        self.tally.lagged.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.tally.frame(text.as_bytes(), self.sample, &self.acks);
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        self.tally.closed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Watches `subject` through nats-server's WebSocket listener until it closes.
    pub async fn nats(self, url: String, subject: String) -> anyhow::Result<()> {
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(url, Some(config()), true).await?;
        let hello = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1}}\r\nSUB {subject} 1\r\nPING\r\n"
        );
        socket.send(Message::binary(hello.into_bytes())).await?;
        let mut parser = NatsParser::default();
        let mut ready = false;
        while let Some(message) = socket.next().await {
            let data = match message? {
                Message::Binary(data) => data,
                Message::Text(text) => text.as_bytes().to_vec().into(),
                Message::Close(_) => break,
                _ => continue,
            };
            parser.buffer.extend_from_slice(&data);
            while let Some(item) = parser.next() {
                match item {
                    NatsItem::Pong if !ready => {
                        ready = true;
                        self.tally.ready.fetch_add(1, Ordering::Relaxed);
                    }
                    NatsItem::Ping => {
                        socket.send(Message::binary(b"PONG\r\n".to_vec())).await?;
                    }
                    NatsItem::Message(payload) => {
                        self.tally.frame(&payload, self.sample, &self.acks)
                    }
                    NatsItem::Pong | NatsItem::Other => {}
                }
            }
        }
        self.tally.closed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

enum NatsItem {
    Ping,
    Pong,
    Message(Vec<u8>),
    Other,
}

/// Just enough of the NATS client protocol: `MSG`/`HMSG` payloads, `PING`, `PONG`.
#[derive(Default)]
struct NatsParser {
    buffer: Vec<u8>,
}

impl NatsParser {
    fn next(&mut self) -> Option<NatsItem> {
        let line_end = self.buffer.windows(2).position(|w| w == b"\r\n")?;
        let line = String::from_utf8_lossy(&self.buffer[..line_end]).into_owned();
        let mut words = line.split_whitespace();
        let item = match words.next() {
            Some("MSG") | Some("HMSG") => {
                let numbers: Vec<usize> = words.filter_map(|w| w.parse().ok()).collect();
                // MSG <subject> <sid> [reply] <size>; HMSG ... <header size> <total size>.
                let total = *numbers.last()?;
                let headers = if line.starts_with("HMSG") {
                    numbers.get(numbers.len().checked_sub(2)?).copied()?
                } else {
                    0
                };
                let body_start = line_end + 2;
                if self.buffer.len() < body_start + total + 2 {
                    return None;
                }
                let payload = self.buffer[body_start + headers..body_start + total].to_vec();
                self.buffer.drain(..body_start + total + 2);
                return Some(NatsItem::Message(payload));
            }
            Some("PING") => NatsItem::Ping,
            Some("PONG") => NatsItem::Pong,
            _ => NatsItem::Other,
        };
        self.buffer.drain(..line_end + 2);
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_is_read_from_the_first_test_name() {
        let frame = br#"{"type":"event","event":{"tests":[{"id":"x","name":"b42-7"}]}}"#;
        assert_eq!(batch_of(frame), Some(42));
        assert_eq!(batch_of(br#"{"type":"event"}"#), None);
    }

    #[test]
    fn the_parser_splits_messages_across_reads() {
        let mut parser = NatsParser::default();
        parser
            .buffer
            .extend_from_slice(b"PING\r\nHMSG s 1 12 17\r\nNATS/1.0\r\n\r\nhel");
        assert!(matches!(parser.next(), Some(NatsItem::Ping)));
        assert!(parser.next().is_none());
        parser
            .buffer
            .extend_from_slice(b"lo\r\nMSG s 1 2\r\nhi\r\n");
        assert!(matches!(parser.next(), Some(NatsItem::Message(p)) if p == b"hello"));
        assert!(matches!(parser.next(), Some(NatsItem::Message(p)) if p == b"hi"));
    }
}
