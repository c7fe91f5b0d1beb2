//! The one way Verdict consumes a JetStream work queue: a durable pull consumer read
//! in explicit batches, each message acknowledged after its handler returns, by the
//! handler's verdict.
//!
//! A round waits for one message, then takes what else is ready at once (up to
//! `max_batch`) and hands all of it to the handler. The next round is pulled once fewer
//! than `rounds_in_flight` rounds are in the handler's hands. So the consumer never holds
//! a message that is not being handled: one that keeps pulls open while it works
//! (async-nats's `messages()` keeps up to one and a half batches waiting in the client)
//! has messages whose ack wait runs out while they wait behind a slow batch, JetStream
//! delivers them again, handling the duplicates delays the next messages past their ack
//! wait in turn, and the consumer spends its time on duplicates while new results wait
//! (issue #20). A handler given several rounds at once keeps their order with
//! [`crate::turns`].
//!
//! A watchdog reads the stream while the consumer runs: the age of the oldest message
//! not yet handled is a gauge, and a consumer that makes no progress while messages
//! wait is logged at warn level.

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::message::Message;
use async_nats::jetstream::AckKind;
use async_nats::Client;
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use verdict_contracts::streams::{Retention, StreamSpec};

use crate::backoff::{Pauses, Retries};
use crate::{BoxError, BusError};

/// How long one pull waits for messages before the server closes it. Short, so a
/// consumer whose pull was lost (a leader moved) pulls again soon.
const PULL_EXPIRY: Duration = Duration::from_secs(2);
/// Pauses after failed pulls before the next one: short, since what is waiting in the
/// stream waits until the pull succeeds.
const PULL_RETRY_PAUSES: Pauses = Pauses {
    first: Duration::from_millis(100),
    max: Duration::from_millis(500),
};
/// Longest wait for the end of a fetch of what is ready. The server answers such a fetch
/// at once, but async-nats gives a fetch without expiry no timeout of its own, so an
/// answer lost with a server that died would hold the consumer forever.
const FETCH_ANSWER_WAIT: Duration = Duration::from_secs(2);
/// How often the watchdog reads the stream.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// Messages waiting with no progress for this long make the consumer "stalled".
pub const STALL_AFTER: Duration = Duration::from_secs(5);

/// A durable consumer of a work-queue stream.
#[derive(Debug, Clone)]
pub struct WorkQueue {
    pub stream: StreamSpec,
    /// The durable consumer's name, shared by every instance of the consuming service.
    pub consumer: &'static str,
    /// Only these subjects, when given.
    pub filter: Option<String>,
    /// A message not acknowledged this long after delivery is delivered again.
    pub ack_wait: Duration,
    /// Most messages handed to the handler at once.
    pub max_batch: usize,
    /// Most rounds in the handler's hands at once. With 1, a round is settled before the
    /// next is pulled; with 2, the next round is pulled and handed over while the one
    /// before is still handled, so a handler can prepare a round while it applies the
    /// previous one (it keeps their order itself, with [`crate::turns`]).
    pub rounds_in_flight: usize,
    /// Replicas of the stream, should it have to be created again.
    pub replicas: usize,
}

/// One delivered message as a handler sees it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub subject: String,
    pub payload: Bytes,
    /// How often JetStream has delivered this message (1 the first time).
    pub delivered: i64,
    /// The trace the publisher was in, so handling the message continues it.
    pub trace: opentelemetry::Context,
}

/// What becomes of a message once its handler returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Handled: removed from the queue.
    Done,
    /// Not handled now: delivered again after the pause.
    Retry(Duration),
    /// Can never be handled (malformed): removed, and the handler has logged why.
    Reject,
}

impl From<Verdict> for AckKind {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Done => AckKind::Ack,
            Verdict::Retry(pause) => AckKind::Nak(Some(pause)),
            Verdict::Reject => AckKind::Term,
        }
    }
}

/// Consumes `queue` until `shutdown`: each batch of messages that are ready together
/// goes to `handle`, which answers one verdict per message, in order. The rounds in
/// hand when `shutdown` fires are finished and acknowledged first.
pub async fn consume<H, Fut>(
    client: &Client,
    queue: WorkQueue,
    mut handle: H,
    shutdown: CancellationToken,
) -> Result<(), BusError>
where
    H: FnMut(Vec<Delivery>) -> Fut,
    Fut: Future<Output = Vec<Verdict>>,
{
    crate::metrics::describe();
    let mut consumer = Some(open(client, &queue).await?);
    // The watchdog takes the stream's first message for the oldest one not handled,
    // which holds only where handled messages leave the stream: not in one kept by its
    // limits, which other readers share (notify's consumer of the run events).
    let watchdog = (queue.stream.retention != Retention::Limits)
        .then(|| tokio::spawn(watch(client.clone(), queue.clone(), shutdown.clone())));
    let mut retries = Retries::new(PULL_RETRY_PAUSES);
    let mut in_hand = FuturesUnordered::new();
    while !shutdown.is_cancelled() {
        while in_hand.len() >= queue.rounds_in_flight.max(1) {
            in_hand.next().await;
        }
        let pulled = match &consumer {
            Some(consumer) => settling(&mut in_hand, pull_round(consumer, &queue, &shutdown)).await,
            // The consumer (or its stream) went away, or its leader moved: open it
            // again, which creates whatever is missing.
            None => settling(&mut in_hand, open(client, &queue))
                .await
                .map(|opened| {
                    consumer = Some(opened);
                    Round::default()
                })
                .map_err(BoxError::from),
        };
        let failure = match pulled {
            Ok(Round { messages, failure }) => {
                if !messages.is_empty() {
                    let handled = handle(deliveries(&messages));
                    in_hand.push(settle(messages, handled, queue.ack_wait));
                }
                failure
            }
            Err(err) => Some(err),
        };
        match failure {
            None => retries.succeeded(),
            Some(err) => {
                let pause = retries.next_pause();
                tracing::warn!(stream = queue.stream.name, consumer = queue.consumer, error = %err, ?pause, "pull failed; pulling again");
                consumer = None;
                let paused = settling(&mut in_hand, async {
                    tokio::select! {
                        () = shutdown.cancelled() => false,
                        () = tokio::time::sleep(pause) => true,
                    }
                });
                if !paused.await {
                    break;
                }
            }
        }
    }
    while in_hand.next().await.is_some() {}
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    Ok(())
}

/// Runs `work` while the rounds in hand go on being handled and settled.
async fn settling<S, W>(in_hand: &mut FuturesUnordered<S>, work: W) -> W::Output
where
    S: Future<Output = ()>,
    W: Future,
{
    tokio::pin!(work);
    loop {
        tokio::select! {
            biased;
            output = &mut work => return output,
            Some(()) = in_hand.next(), if !in_hand.is_empty() => {}
        }
    }
}

async fn open(client: &Client, queue: &WorkQueue) -> Result<PullConsumer, BusError> {
    crate::streams::ensure_exists(client, &[&queue.stream], queue.replicas).await?;
    crate::streams::durable_consumer(
        client,
        &queue.stream,
        queue.consumer,
        queue.filter.clone(),
        queue.ack_wait,
    )
    .await
}

/// The messages of one round, and the error that ended its fetch early, if any (the
/// messages taken before it are handled like the rest).
#[derive(Default)]
struct Round {
    messages: Vec<Message>,
    failure: Option<BoxError>,
}

/// One round: waits (up to [`PULL_EXPIRY`]) for a first message, then takes whatever
/// else is ready at once (up to `max_batch` in all). No message when the pull expired or
/// `shutdown` fired.
async fn pull_round(
    consumer: &PullConsumer,
    queue: &WorkQueue,
    shutdown: &CancellationToken,
) -> Result<Round, BoxError> {
    let mut first = consumer
        .batch()
        .max_messages(1)
        .expires(PULL_EXPIRY)
        .messages()
        .await
        .map_err(BoxError::from)?;
    let first = tokio::select! {
        () = shutdown.cancelled() => return Ok(Round::default()),
        first = first.next() => match first {
            Some(first) => first?,
            // The pull expired: nothing arrived meanwhile.
            None => return Ok(Round::default()),
        },
    };
    let mut messages = vec![first];
    let mut failure = None;
    if queue.max_batch > 1 {
        // No waiting: the server sends what it has and closes the request.
        match consumer
            .fetch()
            .max_messages(queue.max_batch - 1)
            .messages()
            .await
        {
            Ok(rest) => failure = take_ready(rest, &mut messages, FETCH_ANSWER_WAIT).await,
            Err(err) => failure = Some(BoxError::from(err)),
        }
    }
    Ok(Round { messages, failure })
}

/// Moves the fetched messages into `messages` until the fetch ends or `wait` has passed;
/// the error that ended it early, if any. Messages taken before a failure are kept: they
/// are delivered to this consumer and get handled like the rest.
async fn take_ready<S, M, E>(
    mut fetched: S,
    messages: &mut Vec<M>,
    wait: Duration,
) -> Option<BoxError>
where
    S: futures::Stream<Item = Result<M, E>> + Unpin,
    E: Into<BoxError>,
{
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, fetched.next()).await {
            Ok(Some(Ok(message))) => messages.push(message),
            Ok(Some(Err(err))) => return Some(err.into()),
            Ok(None) => return None,
            Err(_) => {
                return Some(format!("a fetch got no end within {} s", wait.as_secs_f64()).into())
            }
        }
    }
}

/// The messages as the handler sees them.
fn deliveries(messages: &[Message]) -> Vec<Delivery> {
    messages
        .iter()
        .map(|message| Delivery {
            subject: message.subject.to_string(),
            payload: message.payload.clone(),
            delivered: message.info().map(|info| info.delivered).unwrap_or(1),
            trace: crate::trace::extract(message.headers.as_ref()),
        })
        .collect()
}

/// Waits for the handler's verdicts on `messages` and acknowledges each by its verdict.
/// While the handler works, the messages are reported in progress every half
/// `ack_wait`, so a slow batch is never delivered again behind the handler's back (a
/// redelivered batch is handled twice, which slows the next one, until the consumer
/// spends its time on duplicates while new messages wait: issue #20).
async fn settle<Fut>(messages: Vec<Message>, handled: Fut, ack_wait: Duration)
where
    Fut: Future<Output = Vec<Verdict>>,
{
    tokio::pin!(handled);
    let mut in_progress = tokio::time::interval_at(
        tokio::time::Instant::now() + ack_wait / 2,
        (ack_wait / 2).max(Duration::from_millis(100)),
    );
    let verdicts = loop {
        tokio::select! {
            verdicts = &mut handled => break verdicts,
            _ = in_progress.tick() => {
                for message in &messages {
                    if let Err(err) = message.ack_with(AckKind::Progress).await {
                        tracing::debug!(error = %err, "could not report a message in progress");
                    }
                }
            }
        }
    };
    debug_assert_eq!(verdicts.len(), messages.len(), "one verdict per message");
    for (message, verdict) in messages.iter().zip(verdicts) {
        if let Err(err) = message.ack_with(verdict.into()).await {
            // Harmless: the message is delivered again, and handlers are idempotent.
            tracing::warn!(error = %err, subject = %message.subject, "could not settle a message");
        }
    }
}

/// Reads the stream's state every [`WATCH_EVERY`]: publishes the age of the oldest
/// waiting message and warns when no message has been handled for [`STALL_AFTER`]
/// while some wait. (In a work queue, the stream's first message is the oldest one not
/// yet handled.)
async fn watch(client: Client, queue: WorkQueue, shutdown: CancellationToken) {
    let js = async_nats::jetstream::new(client);
    let labels = [
        ("stream", queue.stream.name.to_owned()),
        ("consumer", queue.consumer.to_owned()),
    ];
    let age = metrics::gauge!(crate::metrics::WORK_QUEUE_OLDEST_AGE, &labels);
    let waiting = metrics::gauge!(crate::metrics::WORK_QUEUE_MESSAGES, &labels);
    let mut progress = Progress::default();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(WATCH_EVERY) => {}
        }
        let state = match js.get_stream(queue.stream.name).await {
            Ok(mut stream) => match stream.info().await {
                Ok(info) => info.state.clone(),
                Err(err) => {
                    tracing::debug!(error = %err, "could not read the stream state");
                    continue;
                }
            },
            Err(err) => {
                tracing::debug!(error = %err, "could not read the stream state");
                continue;
            }
        };
        let oldest = (state.messages > 0).then(|| {
            let now = time::OffsetDateTime::now_utc();
            (now - state.first_timestamp)
                .try_into()
                .unwrap_or(Duration::ZERO)
        });
        age.set(oldest.unwrap_or_default().as_secs_f64());
        waiting.set(state.messages as f64);
        match progress.observe(state.first_sequence, state.messages, Instant::now()) {
            Observation::Stalled(since) => tracing::warn!(
                stream = queue.stream.name,
                consumer = queue.consumer,
                waiting = state.messages,
                oldest_age_s = oldest.unwrap_or_default().as_secs(),
                stalled_s = since.as_secs(),
                "work queue consumer is making no progress while messages wait"
            ),
            Observation::Resumed => tracing::info!(
                stream = queue.stream.name,
                consumer = queue.consumer,
                "work queue consumer is making progress again"
            ),
            Observation::Steady => {}
        }
    }
}

/// Whether a work queue moves: its first sequence grows as messages are handled.
#[derive(Debug, Default)]
struct Progress {
    first_sequence: u64,
    /// When the first sequence last moved, or messages were last absent.
    moved_at: Option<Instant>,
    stalled: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Observation {
    Steady,
    /// No progress for this long while messages wait (reported once per stall).
    Stalled(Duration),
    Resumed,
}

impl Progress {
    fn observe(&mut self, first_sequence: u64, waiting: u64, now: Instant) -> Observation {
        let moved = waiting == 0 || first_sequence != self.first_sequence;
        self.first_sequence = first_sequence;
        if moved || self.moved_at.is_none() {
            self.moved_at = Some(now);
            return if std::mem::take(&mut self.stalled) {
                Observation::Resumed
            } else {
                Observation::Steady
            };
        }
        let since = now - self.moved_at.unwrap_or(now);
        if since >= STALL_AFTER && !self.stalled {
            self.stalled = true;
            return Observation::Stalled(since);
        }
        Observation::Steady
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fetch_whose_end_never_comes_gives_up_after_the_wait_keeping_what_came() {
        let fetched =
            futures::stream::iter([Ok::<_, BoxError>(1), Ok(2)]).chain(futures::stream::pending());
        let mut messages = vec![0];
        let failure = take_ready(fetched, &mut messages, Duration::from_millis(50)).await;
        assert_eq!(messages, [0, 1, 2]);
        assert!(failure.is_some_and(|err| err.to_string().contains("no end")));
    }

    #[tokio::test]
    async fn a_fetch_that_ends_takes_every_message_and_reports_no_failure() {
        let fetched = futures::stream::iter([Ok::<_, BoxError>(1), Ok(2)]);
        let mut messages = Vec::new();
        let failure = take_ready(fetched, &mut messages, Duration::from_secs(60)).await;
        assert_eq!(messages, [1, 2]);
        assert!(failure.is_none());
    }

    #[tokio::test]
    async fn a_fetch_that_fails_keeps_the_messages_before_the_failure() {
        let fetched = futures::stream::iter([Ok(1), Err(BoxError::from("gone")), Ok(3)]);
        let mut messages = Vec::new();
        let failure = take_ready(fetched, &mut messages, Duration::from_secs(60)).await;
        assert_eq!(messages, [1]);
        assert_eq!(failure.map(|err| err.to_string()).as_deref(), Some("gone"));
    }

    #[test]
    fn a_queue_whose_first_message_stays_put_is_reported_stalled_once() {
        let start = Instant::now();
        let mut progress = Progress::default();
        assert_eq!(progress.observe(10, 5, start), Observation::Steady);
        assert_eq!(
            progress.observe(10, 5, start + Duration::from_secs(2)),
            Observation::Steady
        );
        assert_eq!(
            progress.observe(10, 5, start + STALL_AFTER),
            Observation::Stalled(STALL_AFTER)
        );
        assert_eq!(
            progress.observe(10, 5, start + STALL_AFTER * 2),
            Observation::Steady
        );
        assert_eq!(
            progress.observe(11, 4, start + STALL_AFTER * 3),
            Observation::Resumed
        );
    }

    #[test]
    fn an_empty_queue_never_stalls() {
        let start = Instant::now();
        let mut progress = Progress::default();
        for second in 0..60 {
            assert_eq!(
                progress.observe(10, 0, start + Duration::from_secs(second)),
                Observation::Steady
            );
        }
    }

    #[test]
    fn a_moving_queue_never_stalls() {
        let start = Instant::now();
        let mut progress = Progress::default();
        for second in 0..60 {
            assert_eq!(
                progress.observe(second, 100, start + Duration::from_secs(second)),
                Observation::Steady
            );
        }
    }
}
