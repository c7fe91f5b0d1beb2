//! The one way the bus client retries: exponential pauses with jitter, within a budget
//! of wall-clock time. Jitter matters here because failures are shared: when a service
//! restarts or a NATS node dies, every process that was talking to it fails at the
//! same moment, and without jitter they would all retry at the same moments too.

use std::future::Future;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};

/// Growing pauses between attempts: `first`, then doubling up to `max`, each stretched
/// by a random part of itself (so between 1x and 2x the step).
#[derive(Debug, Clone, Copy)]
pub struct Pauses {
    pub first: Duration,
    pub max: Duration,
}

impl Pauses {
    fn builder(self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_jitter()
            .with_min_delay(self.first)
            .with_max_delay(self.max)
            .without_max_times()
    }
}

/// The pauses of a loop that retries for as long as its process runs (a consumer that
/// pulls again, a watch that is opened again): growing with each failure in a row,
/// from the first again after a success.
pub struct Retries {
    pauses: Pauses,
    sequence: <ExponentialBuilder as BackoffBuilder>::Backoff,
}

impl Retries {
    pub fn new(pauses: Pauses) -> Self {
        Self {
            pauses,
            sequence: pauses.builder().build(),
        }
    }

    /// The pause before the next attempt, after a failure.
    pub fn next_pause(&mut self) -> Duration {
        self.sequence.next().unwrap_or(self.pauses.max)
    }

    /// An attempt succeeded: the next failure pauses as briefly as the first.
    pub fn succeeded(&mut self) {
        self.sequence = self.pauses.builder().build();
    }
}

/// Runs `attempt` until it succeeds, fails with an error `retryable` refuses, or
/// `budget` (counted from now) is spent; then the last error is returned. A pause that
/// would end after the budget is cut short, so the last attempt is made as the budget
/// ends. `notify` hears each error that is retried, with the pause before the next
/// attempt.
pub async fn retry_within<T, E, Fut>(
    budget: Duration,
    pauses: Pauses,
    attempt: impl FnMut() -> Fut,
    retryable: impl FnMut(&E) -> bool,
    notify: impl FnMut(&E, Duration),
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + budget;
    attempt
        .retry(pauses.builder())
        .when(retryable)
        .notify(notify)
        .adjust(move |_, pause| {
            let remaining = deadline
                .checked_duration_since(Instant::now())
                .filter(|remaining| !remaining.is_zero())?;
            pause.map(|pause| pause.min(remaining))
        })
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const QUICK: Pauses = Pauses {
        first: Duration::from_millis(10),
        max: Duration::from_millis(40),
    };

    #[tokio::test]
    async fn an_attempt_that_recovers_is_retried_until_it_succeeds() {
        let attempts = AtomicUsize::new(0);
        let answer = retry_within(
            Duration::from_secs(5),
            QUICK,
            || async {
                match attempts.fetch_add(1, Ordering::Relaxed) {
                    0..=2 => Err("not yet"),
                    _ => Ok("done"),
                }
            },
            |_| true,
            |_, _| {},
        )
        .await;
        assert_eq!(answer, Ok("done"));
        assert_eq!(attempts.load(Ordering::Relaxed), 4);
    }

    #[tokio::test]
    async fn an_error_that_is_not_retryable_is_returned_at_once() {
        let attempts = AtomicUsize::new(0);
        let answer: Result<(), &str> = retry_within(
            Duration::from_secs(5),
            QUICK,
            || async {
                attempts.fetch_add(1, Ordering::Relaxed);
                Err("final")
            },
            |error| *error != "final",
            |_, _| {},
        )
        .await;
        assert_eq!(answer, Err("final"));
        assert_eq!(attempts.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn retries_use_the_whole_budget_and_end_with_the_last_error() {
        let started = Instant::now();
        let answer: Result<(), &str> = retry_within(
            Duration::from_millis(300),
            QUICK,
            || async { Err("down") },
            |_| true,
            |_, _| {},
        )
        .await;
        assert_eq!(answer, Err("down"));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        // The last pause is cut short so that the last attempt is made as it ends.
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn endless_retries_grow_until_a_success_starts_them_over() {
        let mut retries = Retries::new(QUICK);
        let first = retries.next_pause();
        let later: Vec<Duration> = (0..20).map(|_| retries.next_pause()).collect();
        assert!(first < QUICK.first * 2, "{first:?}");
        assert!(later
            .iter()
            .all(|pause| *pause < QUICK.max * 2 + Duration::from_millis(1)));
        assert!(later.last().unwrap() >= &QUICK.max, "{later:?}");
        retries.succeeded();
        assert!(retries.next_pause() < QUICK.first * 2);
    }

    #[tokio::test]
    async fn pauses_grow_up_to_the_maximum_and_are_jittered() {
        let mut pauses = Vec::new();
        let _: Result<(), &str> = retry_within(
            Duration::from_millis(600),
            QUICK,
            || async { Err("down") },
            |_| true,
            |_, pause| pauses.push(pause),
        )
        .await;
        assert!(pauses.len() >= 5, "{pauses:?}");
        // The last pause may be cut short by the budget.
        for (step, pause) in pauses[..pauses.len() - 1].iter().enumerate() {
            // The steps are computed in f32: allow for its rounding.
            let base = (QUICK.first * 2u32.pow(step.min(2) as u32)).as_secs_f64();
            let pause = pause.as_secs_f64();
            assert!(pause > base * 0.999 && pause < base * 2.001, "{pauses:?}");
        }
        let distinct: std::collections::BTreeSet<_> = pauses.iter().collect();
        assert!(distinct.len() > 1, "no jitter: {pauses:?}");
    }
}
