//! How long one attempt of a test took.

use serde::Serialize;

use super::limits::MAX_DURATION_MS;
use super::names::InvalidValue;

/// A duration in whole milliseconds, at most [`MAX_DURATION_MS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DurationMs(u64);

impl DurationMs {
    pub fn new(millis: u64) -> Result<Self, InvalidValue> {
        if millis > MAX_DURATION_MS {
            return Err(InvalidValue::new(format!(
                "must be at most {MAX_DURATION_MS} ms, got {millis}"
            )));
        }
        Ok(Self(millis))
    }

    /// A duration the gateway already checked (see `wire.rs`).
    pub(super) fn checked(millis: u64) -> Self {
        Self(millis)
    }

    /// Seconds as reports write them (JUnit `time="0.25"`), rounded to the millisecond;
    /// `None` for negative, non-finite or absurdly long values, which say nothing useful.
    pub fn from_seconds(seconds: f64) -> Option<Self> {
        Self::from_millis_f64(seconds * 1000.0)
    }

    /// Milliseconds that may carry a fraction (some CTRF reporters write `12.5`).
    pub fn from_millis_f64(millis: f64) -> Option<Self> {
        let rounded = millis.round();
        if !(0.0..=MAX_DURATION_MS as f64).contains(&rounded) {
            return None;
        }
        // In range and integral, so the conversion is exact.
        Some(Self(rounded as u64))
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_beyond_a_year_are_refused() {
        assert!(DurationMs::new(MAX_DURATION_MS).is_ok());
        assert!(DurationMs::new(MAX_DURATION_MS + 1).is_err());
    }

    #[test]
    fn seconds_round_to_the_millisecond() {
        assert_eq!(
            DurationMs::from_seconds(0.0125).map(DurationMs::get),
            Some(13)
        );
        assert_eq!(
            DurationMs::from_seconds(2.0).map(DurationMs::get),
            Some(2000)
        );
        assert_eq!(
            DurationMs::from_seconds(-0.0001).map(DurationMs::get),
            Some(0)
        );
    }

    #[test]
    fn nonsense_seconds_give_no_duration() {
        for seconds in [-1.0, f64::NAN, f64::INFINITY, 1e30] {
            assert_eq!(DurationMs::from_seconds(seconds), None, "{seconds}");
        }
    }
}
