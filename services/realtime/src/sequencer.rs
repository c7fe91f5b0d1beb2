//! The sequencer: follows `VERDICT_EVENTS` in order and appends each event to the log
//! of every channel that shows it, with that channel's next `seq`.
//!
//! It keeps no state that JetStream does not have: it resumes from the newest frame's
//! source sequence, and learns each channel's head from the log. Every replica runs one;
//! the log's optimistic append makes them agree, and whichever is ahead does the work.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use async_nats::jetstream::Context;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use verdict_contracts::events::Event;
use verdict_contracts::live::{Channel, Frame};
use verdict_contracts::streams;

use verdict_bus::backoff::{Pauses, Retries};

use crate::coalesce::Coalescer;
use crate::log::{Appended, ChannelLog, Head};
use crate::Error;

/// Pauses before retrying an append the bus refused.
const APPEND_PAUSES: Pauses = Pauses {
    first: Duration::from_millis(250),
    max: Duration::from_secs(2),
};
/// Pauses before following the events stream again after it failed.
const FOLLOW_PAUSES: Pauses = Pauses {
    first: Duration::from_millis(500),
    max: Duration::from_secs(2),
};

pub struct Sequencer {
    log: ChannelLog,
    heads: HashMap<Channel, Head>,
    progress: Coalescer,
    /// The newest source sequence taken from the events stream.
    last_source: u64,
}

impl Sequencer {
    pub fn new(log: ChannelLog, progress_interval: Duration) -> Self {
        Self {
            log,
            heads: HashMap::new(),
            progress: Coalescer::new(progress_interval),
            last_source: 0,
        }
    }

    /// Sequences events until `shutdown`. When JetStream cannot be reached (a cluster
    /// still electing leaders, a node going away), it starts over from the log.
    pub async fn run(mut self, js: Context, shutdown: CancellationToken) -> Result<(), Error> {
        let mut retries = Retries::new(FOLLOW_PAUSES);
        while !shutdown.is_cancelled() {
            let started = tokio::time::Instant::now();
            match self.follow(&js, &shutdown).await {
                Ok(()) => break,
                Err(err) => {
                    // A follow that went well for a while failed for a new reason.
                    if started.elapsed() > FOLLOW_PAUSES.max {
                        retries.succeeded();
                    }
                    let pause = retries.next_pause();
                    tracing::warn!(error = %err, ?pause, "cannot follow the events stream; starting over");
                    self.heads.clear();
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Follows the events stream from where the log ends, until `shutdown` or an error.
    async fn follow(&mut self, js: &Context, shutdown: &CancellationToken) -> Result<(), Error> {
        let resume = self.log.resume_point().await?;
        let events = js
            .get_stream(streams::EVENTS.name)
            .await
            .map_err(|err| Error::JetStream(err.into()))?;
        // Resuming at the newest frame's own event (not after it): a crash between the
        // frames of one event leaves some of its channels to do, and the log skips the rest.
        let deliver_policy = match resume {
            Some(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
            None => DeliverPolicy::All,
        };
        let consumer = events
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|err| Error::JetStream(err.into()))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|err| Error::JetStream(err.into()))?;
        let mut tick = tokio::time::interval(self.progress.tick());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(?resume, "sequencing live frames");
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                message = messages.next() => {
                    let message = match message {
                        Some(Ok(message)) => message,
                        Some(Err(err)) => {
                            tracing::warn!(error = %err, "events consumer hiccup");
                            continue;
                        }
                        None => return Err(Error::ConsumerStopped),
                    };
                    let (source_seq, published, pending) = match message.info() {
                        Ok(info) => (info.stream_sequence, info.published, info.pending),
                        Err(err) => {
                            tracing::warn!(error = %err, "event without JetStream metadata");
                            continue;
                        }
                    };
                    self.last_source = source_seq;
                    match serde_json::from_slice::<Event>(&message.payload) {
                        Ok(event) => {
                            let span = tracing::info_span!("realtime.sequence", source_seq);
                            verdict_bus::trace::continue_from(&span, message.headers.as_ref());
                            self.take(event, shutdown).instrument(span).await
                        }
                        Err(err) => tracing::warn!(source_seq, error = %err, "skipping a malformed event"),
                    }
                    crate::metrics::sequenced(published, pending);
                }
                _ = tick.tick() => {
                    for event in self.progress.due(Instant::now()) {
                        self.sequence(event, shutdown).await;
                    }
                }
            }
        }
    }

    async fn take(&mut self, event: Event, shutdown: &CancellationToken) {
        let run_id = event.scope().1;
        match event {
            Event::RunProgress { .. } => {
                if let Some(event) = self.progress.offer(run_id, event, Instant::now()) {
                    self.sequence(event, shutdown).await;
                }
            }
            Event::RunFinished { .. } | Event::RunDeleted { .. } => {
                self.progress.forget(run_id);
                self.sequence(event, shutdown).await;
                // The run's channel is quiet from now on; its head is in the log if needed.
                self.heads.remove(&Channel::Run(run_id));
            }
            _ => self.sequence(event, shutdown).await,
        }
    }

    /// Appends the event to each of its channels, retrying until stored or shutdown.
    async fn sequence(&mut self, event: Event, shutdown: &CancellationToken) {
        let source_seq = self.last_source;
        for channel in Channel::of(&event) {
            let mut retries = Retries::new(APPEND_PAUSES);
            while !shutdown.is_cancelled() {
                match self.append(&channel, &event, source_seq).await {
                    Ok(()) => break,
                    Err(err) => {
                        let pause = retries.next_pause();
                        tracing::warn!(%channel, error = %err, ?pause, "cannot append a live frame; retrying");
                        self.heads.remove(&channel);
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
    }

    async fn append(
        &mut self,
        channel: &Channel,
        event: &Event,
        source_seq: u64,
    ) -> Result<(), Error> {
        loop {
            let head = match self.heads.get(channel) {
                Some(head) => *head,
                None => self.log.head(channel).await?,
            };
            if head.source_seq >= source_seq {
                // Another replica (or this one before a restart) already showed it.
                self.heads.insert(channel.clone(), head);
                return Ok(());
            }
            let frame = Frame {
                channel: channel.clone(),
                seq: head.seq + 1,
                event: event.clone(),
            };
            let bytes = serde_json::to_vec(&frame).map_err(|err| Error::JetStream(err.into()))?;
            let frame_bytes = bytes.len();
            match self.log.append(channel, head, source_seq, bytes).await? {
                Appended::Stored(head) => {
                    self.heads.insert(channel.clone(), head);
                    return Ok(());
                }
                Appended::Stale => {
                    self.heads.remove(channel);
                }
                Appended::Refused(reason) => {
                    // Retrying would stop this channel, and every other one behind it,
                    // for good; its viewers miss this frame (snapshots have the truth).
                    tracing::error!(%channel, source_seq, frame_bytes, %reason, "a live frame the bus refuses was skipped");
                    return Ok(());
                }
            }
        }
    }
}
