//! When a failed delivery is tried again: exponential pauses with jitter, until a
//! deadline counted from the delivery's creation. Pure arithmetic, so the schedule is
//! tested without clocks; the caller draws the jitter.

use std::time::Duration;

/// The retry schedule of deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `VERDICT_NOTIFY_RETRY_FIRST`: the pause after the first failed attempt.
    pub first: Duration,
    /// `VERDICT_NOTIFY_RETRY_MAX`: the longest pause; the doubling stops there.
    pub max: Duration,
    /// `VERDICT_NOTIFY_RETRY_FOR`: no attempt is made later than this after the
    /// delivery was created.
    pub give_up_after: Duration,
}

impl RetryPolicy {
    /// The pause after `failed` attempts in a row (1 after the first): `first` doubled
    /// for each further failure, capped at `max`, then stretched by `jitter` (0 to 1)
    /// of itself, so that receivers that failed together are not retried together.
    pub fn pause(&self, failed: u32, jitter: f64) -> Duration {
        let doublings = failed.saturating_sub(1).min(32);
        let step = self
            .first
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max)
            .min(self.max);
        step.mul_f64(1.0 + jitter.clamp(0.0, 1.0))
    }

    /// When to try again (Unix ms) after `failed` attempts of a delivery created at
    /// `created_at`, now being `now`; `None` once the schedule is over. The last
    /// attempt is moved to the deadline rather than skipped.
    pub fn next_attempt(&self, created_at: i64, now: i64, failed: u32, jitter: f64) -> Option<i64> {
        let deadline = created_at.saturating_add(millis(self.give_up_after));
        if now >= deadline {
            return None;
        }
        Some(
            now.saturating_add(millis(self.pause(failed, jitter)))
                .min(deadline),
        )
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        first: Duration::from_secs(5),
        max: Duration::from_secs(3600),
        give_up_after: Duration::from_secs(24 * 3600),
    };

    #[test]
    fn pauses_double_from_the_first_up_to_the_maximum() {
        let pauses: Vec<u64> = (1..=12).map(|n| POLICY.pause(n, 0.0).as_secs()).collect();
        assert_eq!(
            pauses,
            [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
        assert_eq!(POLICY.pause(1000, 0.0), POLICY.max);
    }

    #[test]
    fn jitter_stretches_a_pause_by_at_most_itself() {
        assert_eq!(POLICY.pause(2, 0.5), Duration::from_secs(15));
        assert_eq!(POLICY.pause(2, 1.0), Duration::from_secs(20));
        assert_eq!(POLICY.pause(2, 7.0), Duration::from_secs(20));
    }

    #[test]
    fn the_next_attempt_follows_the_pause() {
        assert_eq!(POLICY.next_attempt(0, 1_000, 1, 0.0), Some(6_000));
    }

    #[test]
    fn the_last_attempt_is_made_at_the_deadline_and_none_after() {
        let deadline = 24 * 3600 * 1000;
        assert_eq!(
            POLICY.next_attempt(0, deadline - 1_000, 20, 0.0),
            Some(deadline)
        );
        assert_eq!(POLICY.next_attempt(0, deadline, 20, 0.0), None);
    }

    #[test]
    fn a_full_schedule_spans_a_day_in_a_few_dozen_attempts() {
        let (mut now, mut failed) = (0, 0);
        while let Some(next) = POLICY.next_attempt(0, now, failed + 1, 0.0) {
            now = next;
            failed += 1;
        }
        assert_eq!(now, 24 * 3600 * 1000);
        assert!((25..40).contains(&failed), "{failed} attempts");
    }
}
