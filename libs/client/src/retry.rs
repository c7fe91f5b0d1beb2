//! When to try a request again, and how long to wait first: exponential backoff with
//! full jitter, at least what the server asked for in `Retry-After`, all within a time
//! budget. Pure functions; the client applies them.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// How a client retries calls that are safe to repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The longest time from a call's first attempt after which no further attempt
    /// starts (a wait that would end past it is not begun).
    pub budget: Duration,
    /// The backoff ceiling of the first retry; it doubles with each further one.
    pub base: Duration,
    /// The largest backoff ceiling.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    /// A minute of retries: long enough to ride out a gateway or service restart.
    fn default() -> Self {
        Self {
            budget: Duration::from_secs(60),
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            budget: Duration::ZERO,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (1 for the first retry): a uniformly random
    /// share (`jitter`, in `[0, 1)`) of `min(cap, base * 2^(retry-1))` ("full jitter"),
    /// or, when the server sent `Retry-After`, that long plus a random share of `base`,
    /// so clients told the same time do not all come back at once.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let jitter = jitter.clamp(0.0, 1.0);
        match retry_after {
            Some(wait) => wait + self.base.mul_f64(jitter),
            None => {
                let doublings = retry.saturating_sub(1).min(30);
                let ceiling = self.base.saturating_mul(1 << doublings).min(self.cap);
                ceiling.mul_f64(jitter)
            }
        }
    }
}

/// Statuses that say "not now" rather than "no": the request may succeed if repeated.
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

const HTTP_DATE: &[BorrowedFormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// A `Retry-After` value: delay-seconds, or an HTTP-date (RFC 9110), which gives the
/// time left until then (zero when it has passed). `None` for anything else.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    let at = PrimitiveDateTime::parse(value, HTTP_DATE)
        .ok()?
        .assume_utc();
    let now = OffsetDateTime::from(now);
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            budget: Duration::from_secs(30),
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        }
    }

    #[test]
    fn backoff_ceilings_double_from_the_base_up_to_the_cap() {
        let ceilings: Vec<u128> = (1..=7)
            .map(|retry| policy().delay(retry, None, 1.0).as_millis())
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn full_jitter_spreads_waits_between_zero_and_the_ceiling() {
        assert_eq!(policy().delay(3, None, 0.0), Duration::ZERO);
        assert_eq!(policy().delay(3, None, 0.5), Duration::from_millis(200));
        for retry in 1..=40 {
            assert!(policy().delay(retry, None, 0.999) <= policy().cap);
        }
    }

    #[test]
    fn a_retry_after_is_waited_in_full_plus_at_most_the_base() {
        let asked = Some(Duration::from_secs(3));
        assert_eq!(policy().delay(1, asked, 0.0), Duration::from_secs(3));
        assert_eq!(
            policy().delay(9, asked, 0.5),
            Duration::from_millis(3050),
            "the server's wait, not the backoff ceiling, sets the pace"
        );
    }

    #[test]
    fn out_of_range_jitter_is_clamped() {
        assert_eq!(policy().delay(1, None, -3.0), Duration::ZERO);
        assert_eq!(policy().delay(1, None, 7.0), Duration::from_millis(100));
    }

    #[test]
    fn retry_after_in_seconds() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_as_an_http_date_is_the_time_left_until_it() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_767);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(10))
        );
        let later = now + Duration::from_secs(60);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn unreadable_retry_after_values_are_ignored() {
        let now = SystemTime::now();
        for bad in ["", "-1", "1.5", "soon", "Sunday, 06-Nov-94 08:49:37 GMT"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn only_temporary_failures_are_retried() {
        for status in [429, 502, 503, 504] {
            assert!(is_retryable_status(StatusCode::from_u16(status).unwrap()));
        }
        for status in [400, 401, 403, 404, 409, 413, 422, 500] {
            assert!(!is_retryable_status(StatusCode::from_u16(status).unwrap()));
        }
    }
}
