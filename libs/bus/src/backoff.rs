//! The one way the bus client retries: exponential pauses with jitter, within a budget
//! of wall-clock time. Jitter matters here because failures are shared: when a service
//! restarts or a NATS node dies, every process that was talking to it fails at the
//! same moment, and without jitter they would all retry at the same moments too.

use std::future::Future;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};

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

/// Runs `attempt` until it succeeds, fails with an error `retryable` refuses, or the
/// next pause would end after `budget` (counted from now); then the last error is
/// returned. `notify` hears each error that is retried, with the pause before the next
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
        .adjust(move |_, pause| pause.filter(|pause| Instant::now() + *pause < deadline))
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
    async fn retries_stop_within_the_budget_with_the_last_error() {
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
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
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
        for (step, pause) in pauses.iter().enumerate() {
            // The steps are computed in f32: allow for its rounding.
            let base = (QUICK.first * 2u32.pow(step.min(2) as u32)).as_secs_f64();
            let pause = pause.as_secs_f64();
            assert!(pause > base * 0.999 && pause < base * 2.001, "{pauses:?}");
        }
        let distinct: std::collections::BTreeSet<_> = pauses.iter().collect();
        assert!(distinct.len() > 1, "no jitter: {pauses:?}");
    }
}
