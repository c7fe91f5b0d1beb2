//! Viewers that count what they receive: of Verdict's gateway (`/api/v1/live`) and of
//! nats-server's own WebSocket listener (the NATS protocol over WebSocket).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use flate2::{Decompress, FlushDecompress};

use super::socket::{self, RawSocket};

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
    // The first test's name comes within the first few hundred bytes of a frame.
    let head = &frame[..frame.len().min(1024)];
    let start = head.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let digits = frame[start..].iter().take_while(|b| b.is_ascii_digit());
    let mut batch = 0usize;
    let mut any = false;
    for digit in digits {
        batch = batch * 10 + usize::from(digit - b'0');
        any = true;
    }
    any.then_some(batch)
}

pub struct Viewer {
    pub tally: Arc<Tally>,
    pub acks: Arc<Vec<OnceLock<Instant>>>,
    pub sample: bool,
}

/// Compressed messages shorter than this are inflated by every viewer: a `lagged`
/// message (at most about 110 bytes of JSON) always is, event frames (a progress frame
/// is about 170 bytes compressed) are not. Only timed viewers read the others, as the
/// viewers share two cores with the gateway they measure; on a viewer's own machine the
/// browser would inflate them.
const ALWAYS_INFLATED: usize = 128;

/// How much of a compressed message a viewer inflates: enough for its type and the
/// first test's name, which is all a viewer looks at.
const HEAD: usize = 1024;

impl Viewer {
    /// Watches `channel` on a Verdict gateway (`host:port`) until the socket closes;
    /// with `deflate`, asks for compressed messages (`encoding=deflate`).
    pub async fn verdict(
        self,
        address: String,
        token: String,
        channel: String,
        deflate: bool,
    ) -> anyhow::Result<()> {
        let (mut socket, mut inflater) =
            subscribe_verdict(&address, &token, &channel, deflate, None).await?;
        self.tally.ready.fetch_add(1, Ordering::Relaxed);
        while let Some((opcode, payload)) = socket.next().await? {
            match opcode {
                socket::TEXT => self.received(socket.payload(payload)),
                socket::BINARY => {
                    let compressed = socket.payload(payload);
                    if self.sample || compressed.len() < ALWAYS_INFLATED {
                        self.received(inflater.head(compressed)?);
                    } else {
                        self.tally.frame(&[], false, &self.acks);
                    }
                }
                socket::PING => {
                    let ping = socket.payload(payload).to_vec();
                    socket.send(socket::PONG, &ping).await?;
                }
                socket::CLOSE => break,
                _ => {}
            }
        }
        self.tally.closed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Subscribes like [`Viewer::verdict`], then never reads again, with a receive
    /// buffer of 4 KiB so that the gateway's writes back up soon; holds the socket until
    /// the task is aborted or the gateway closes it.
    pub async fn stall(
        address: String,
        token: String,
        channel: String,
        deflate: bool,
    ) -> anyhow::Result<()> {
        let (_socket, _) =
            subscribe_verdict(&address, &token, &channel, deflate, Some(4096)).await?;
        std::future::pending::<()>().await;
        Ok(())
    }

    fn received(&self, text: &[u8]) {
        if text.starts_with(b"{\"type\":\"lagged\"") {
            self.tally.lagged.fetch_add(1, Ordering::Relaxed);
        } else {
            self.tally.frame(text, self.sample, &self.acks);
        }
    }

    /// Watches `subject` through nats-server's WebSocket listener (`host:port`) until it
    /// closes.
    pub async fn nats(self, address: String, subject: String) -> anyhow::Result<()> {
        let mut socket = RawSocket::connect(&address, "/", &[], None).await?;
        let hello = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1}}\r\nSUB {subject} 1\r\nPING\r\n"
        );
        socket.send(socket::BINARY, hello.as_bytes()).await?;
        let mut parser = NatsParser::default();
        let mut ready = false;
        while let Some((opcode, payload)) = socket.next().await? {
            match opcode {
                socket::CLOSE => break,
                socket::PING => {
                    let ping = socket.payload(payload).to_vec();
                    socket.send(socket::PONG, &ping).await?;
                    continue;
                }
                _ => parser.buffer.extend_from_slice(socket.payload(payload)),
            }
            while let Some(item) = parser.next() {
                match item {
                    NatsItem::Pong if !ready => {
                        ready = true;
                        self.tally.ready.fetch_add(1, Ordering::Relaxed);
                    }
                    NatsItem::Ping => socket.send(socket::BINARY, b"PONG\r\n").await?,
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

/// Opens a socket to a Verdict gateway and subscribes to `channel`; returns once the
/// gateway confirmed.
async fn subscribe_verdict(
    address: &str,
    token: &str,
    channel: &str,
    deflate: bool,
    receive_buffer: Option<u32>,
) -> anyhow::Result<(RawSocket, Inflater)> {
    let bearer = format!("Bearer {token}");
    let path = if deflate {
        "/api/v1/live?encoding=deflate"
    } else {
        "/api/v1/live"
    };
    let headers = [("Authorization", bearer.as_str())];
    let mut socket = RawSocket::connect(address, path, &headers, receive_buffer).await?;
    let mut inflater = Inflater::default();
    let subscribe = serde_json::json!({ "type": "subscribe", "channel": channel });
    socket
        .send(socket::TEXT, subscribe.to_string().as_bytes())
        .await?;
    let (opcode, first) = socket.next().await?.context("closed before subscribed")?;
    let first = match opcode {
        socket::BINARY => inflater.head(socket.payload(first))?.to_vec(),
        _ => socket.payload(first).to_vec(),
    };
    if !first.starts_with(b"{\"type\":\"subscribed\"") {
        bail!("not subscribed: {}", String::from_utf8_lossy(&first));
    }
    Ok((socket, inflater))
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

/// Inflates the head of raw-DEFLATE messages, reusing its state and buffer.
struct Inflater {
    state: Decompress,
    head: Vec<u8>,
}

impl Default for Inflater {
    fn default() -> Self {
        Self {
            state: Decompress::new(false),
            head: Vec::with_capacity(HEAD),
        }
    }
}

impl Inflater {
    /// Up to the first [`HEAD`] bytes of the message `compressed` holds.
    fn head(&mut self, compressed: &[u8]) -> anyhow::Result<&[u8]> {
        self.state.reset(false);
        self.head.clear();
        self.state
            .decompress_vec(compressed, &mut self.head, FlushDecompress::Finish)
            .context("a compressed message that does not inflate")?;
        Ok(&self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::super::floor::compress as deflate;
    use super::*;

    #[test]
    fn the_inflater_gives_a_short_message_whole_and_a_long_one_s_head() {
        let mut inflater = Inflater::default();
        let short = br#"{"type":"lagged","channel":"run:r"}"#;
        assert_eq!(inflater.head(&deflate(short)).unwrap(), short);
        let long = br#"{"type":"event","name":"b7-1"}"#.repeat(200);
        assert_eq!(inflater.head(&deflate(&long)).unwrap(), &long[..HEAD]);
        assert_eq!(inflater.head(&deflate(short)).unwrap(), short);
    }

    #[test]
    fn a_lagged_message_is_always_short_enough_to_be_inflated() {
        // The longest id, with no repeats for DEFLATE to shorten.
        let id = "q7Zk2_Wm9xRb4-Lp0YsTc8Nv3Hf6JdGa1UeXoKi5-BtMwQ_zCrVn9yLh2SjFg7Dp";
        assert_eq!(id.len(), verdict_contracts::live::MAX_CHANNEL_ID_LEN);
        let lagged = format!(r#"{{"type":"lagged","channel":"project:{id}"}}"#);
        assert!(deflate(lagged.as_bytes()).len() < ALWAYS_INFLATED);
    }

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
