//! The channel log: each channel's frames on its own subject of `VERDICT_LIVE`.
//!
//! A frame is appended only if the channel's last frame is still the one the writer
//! saw (`Nats-Expected-Last-Subject-Sequence`), so replicas that race to sequence the
//! same event agree on every `seq`: the loser re-reads the head and skips what is
//! already covered.

use std::time::Duration;

use async_nats::jetstream::consumer;
use async_nats::jetstream::context::{Context, PublishError, PublishErrorKind};
use async_nats::jetstream::message::{PublishMessage, StreamMessage};
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use async_nats::jetstream::Error as JetStreamError;
use futures::StreamExt;
use verdict_contracts::live::{self, Channel};

use crate::Error;

/// The last frame of a channel, or where a channel without frames starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    /// The channel's last `seq` (0: no frame yet).
    pub seq: u64,
    /// That frame's sequence in `VERDICT_LIVE` (0: none).
    pub stream_seq: u64,
    /// The last `VERDICT_EVENTS` sequence it covers.
    pub source_seq: u64,
}

/// The outcome of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored as the channel's new head.
    Stored(Head),
    /// The channel moved on since `expected` was read; re-read the head.
    Stale,
    /// The bus refused this frame for good (too large for it, or the stream said no to
    /// it): sending it again can never succeed.
    Refused(String),
}

/// Frames after a viewer's `since`, or the reason to send a snapshot instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    Frames { head: u64, frames: Vec<String> },
    TooOld,
}

/// A replay reply stays well inside one NATS message.
const REPLAY_MAX_BYTES: usize = 4 << 20;

#[derive(Clone)]
pub struct ChannelLog {
    js: Context,
    stream: Stream,
}

impl ChannelLog {
    pub async fn open(js: Context) -> Result<Self, Error> {
        let stream = js
            .get_stream(live_stream_name())
            .await
            .map_err(|err| Error::JetStream(err.into()))?;
        Ok(Self { js, stream })
    }

    /// The channel's head as stored.
    pub async fn head(&self, channel: &Channel) -> Result<Head, Error> {
        // Read from the stream leader (not a direct get, which a lagging replica may
        // answer): a stale head would turn a replay into a snapshot.
        match self
            .stream
            .get_last_raw_message_by_subject(&channel.subject())
            .await
        {
            Ok(message) => Ok(head_of(&message)),
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => {
                Ok(Head::default())
            }
            Err(err) => Err(Error::JetStream(err.into())),
        }
    }

    /// Where sequencing resumes: the source sequence of the newest frame of any channel.
    pub async fn resume_point(&self) -> Result<Option<u64>, Error> {
        let mut stream = self.stream.clone();
        let last = stream
            .info()
            .await
            .map_err(|err| Error::JetStream(err.into()))?
            .state
            .last_sequence;
        if last == 0 {
            return Ok(None);
        }
        match stream.get_raw_message(last).await {
            Ok(message) => Ok(Some(head_of(&message).source_seq)),
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(Error::JetStream(err.into())),
        }
    }

    /// Appends `frame` (already serialized with `seq = expected.seq + 1`) to the channel.
    pub async fn append(
        &self,
        channel: &Channel,
        expected: Head,
        source_seq: u64,
        frame: Vec<u8>,
    ) -> Result<Appended, Error> {
        let seq = expected.seq + 1;
        let message = PublishMessage::build()
            .payload(frame.into())
            .headers(verdict_bus::trace::current_headers())
            .header(live::SEQ_HEADER, seq.to_string().as_str())
            .header(live::SOURCE_HEADER, source_seq.to_string().as_str())
            .expected_last_subject_sequence(expected.stream_seq);
        let ack = match self.js.send_publish(channel.subject(), message).await {
            Ok(ack) => ack.await,
            Err(err) => Err(err),
        };
        match ack {
            Ok(ack) => Ok(Appended::Stored(Head {
                seq,
                stream_seq: ack.sequence,
                source_seq,
            })),
            Err(err) if err.kind() == PublishErrorKind::WrongLastSequence => Ok(Appended::Stale),
            Err(err) if is_refusal(&err) => Ok(Appended::Refused(err.to_string())),
            Err(err) => Err(Error::JetStream(err.into())),
        }
    }

    /// The frames of `channel` after `since`, up to `limit` of them.
    pub async fn replay(&self, channel: &Channel, since: u64, limit: u64) -> Result<Replay, Error> {
        let head = self.head(channel).await?;
        if since == head.seq {
            return Ok(Replay::Frames {
                head: head.seq,
                frames: Vec::new(),
            });
        }
        let too_old = |reason: &str| {
            tracing::info!(%channel, since, head = head.seq, reason, "snapshot instead of a replay");
            Ok(Replay::TooOld)
        };
        if since > head.seq {
            return too_old("ahead of the log");
        }
        if head.seq - since > limit {
            return too_old("too far behind");
        }
        let Some(start) = self.first_after(channel, since, head.stream_seq).await? else {
            return too_old("no longer retained");
        };
        match self.read(channel, start, head).await? {
            Some(frames) if frames.len() as u64 == head.seq - since => Ok(Replay::Frames {
                head: head.seq,
                frames,
            }),
            Some(frames) => too_old(&format!("read {} frames", frames.len())),
            None => too_old("larger than one reply"),
        }
    }

    /// The stream sequence of the channel's frame `since + 1`: a binary search over the
    /// stream, since a channel's `seq` grows with the stream sequence. `None` when that
    /// frame is no longer retained.
    async fn first_after(
        &self,
        channel: &Channel,
        since: u64,
        head_stream_seq: u64,
    ) -> Result<Option<u64>, Error> {
        let subject = channel.subject();
        let first = self.next_at(&subject, None).await?;
        let Some(first) = first else { return Ok(None) };
        let first_head = head_of(&first);
        if first_head.seq > since + 1 {
            return Ok(None);
        }
        let (mut low, mut high) = (first.sequence, head_stream_seq);
        while low < high {
            let middle = low + (high - low) / 2;
            match self.next_at(&subject, Some(middle)).await? {
                Some(message) if head_of(&message).seq > since => high = middle,
                Some(message) => low = message.sequence + 1,
                None => return Ok(None),
            }
        }
        Ok(Some(low))
    }

    async fn next_at(
        &self,
        subject: &str,
        from: Option<u64>,
    ) -> Result<Option<StreamMessage>, Error> {
        let found = match from {
            Some(sequence) => {
                self.stream
                    .get_first_raw_message_by_subject(subject, sequence)
                    .await
            }
            None => self.stream.get_next_raw_message_by_subject(subject).await,
        };
        match found {
            Ok(message) => Ok(Some(message)),
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(Error::JetStream(err.into())),
        }
    }

    /// The channel's frames from stream sequence `start` up to its head; `None` when they
    /// would not fit one reply.
    async fn read(
        &self,
        channel: &Channel,
        start: u64,
        head: Head,
    ) -> Result<Option<Vec<String>>, Error> {
        let reader = self
            .stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: channel.subject(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ..Default::default()
            })
            .await
            .map_err(|err| Error::JetStream(err.into()))?;
        let mut messages = reader
            .messages()
            .await
            .map_err(|err| Error::JetStream(err.into()))?;
        let mut frames = Vec::new();
        let mut bytes = 0;
        loop {
            let next = tokio::time::timeout(READ_TIMEOUT, messages.next())
                .await
                .map_err(|_| Error::JetStream("replay read timed out".into()))?;
            let Some(message) = next else { break };
            let message = message.map_err(|err| Error::JetStream(err.into()))?;
            let stream_seq = message.info().map_err(Error::JetStream)?.stream_sequence;
            // An ordered consumer that resets before its first message starts over at the
            // beginning of the stream (seen on a cluster): what precedes `start` is skipped.
            if stream_seq >= start {
                bytes += message.payload.len();
                if bytes > REPLAY_MAX_BYTES {
                    return Ok(None);
                }
                frames.push(String::from_utf8_lossy(&message.payload).into_owned());
            }
            if stream_seq >= head.stream_seq {
                break;
            }
        }
        Ok(Some(frames))
    }
}

const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a failed publish is a definite "no" to this message: larger than the
/// server's `max_payload` (the client checks before sending), or an error answer of the
/// stream itself. Timeouts, lost connections and missing stream leaders are not: those
/// pass.
fn is_refusal(error: &PublishError) -> bool {
    error.kind() == PublishErrorKind::MaxPayloadExceeded
        || std::error::Error::source(error).is_some_and(|source| source.is::<JetStreamError>())
}

fn live_stream_name() -> &'static str {
    verdict_contracts::streams::LIVE.name
}

/// A stored frame's place in its channel, from its headers.
fn head_of(message: &StreamMessage) -> Head {
    let number = |name: &str| {
        message
            .headers
            .get(name)
            .and_then(|value| value.as_str().parse().ok())
            .unwrap_or(0)
    };
    Head {
        seq: number(live::SEQ_HEADER),
        stream_seq: message.sequence,
        source_seq: number(live::SOURCE_HEADER),
    }
}
