//! The one timestamp type: a UTC instant in Unix milliseconds, shown as RFC 3339. The
//! services store times as integers (milliseconds, or seconds where they always have)
//! and convert through this type, never with clocks of their own.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A UTC instant with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        Self::of(OffsetDateTime::now_utc())
    }

    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Whole seconds, rounded down.
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn of(at: OffsetDateTime) -> Self {
        Self((at.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    /// RFC 3339 in UTC, with as many fraction digits as the milliseconds need (none for
    /// a whole second); empty for an instant `time` cannot represent.
    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .ok()
            .and_then(|at| at.format(&Rfc3339).ok())
            .unwrap_or_default()
    }

    /// A time in RFC 3339, as a client gives it.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        OffsetDateTime::parse(text, &Rfc3339).ok().map(Self::of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_shows_as_rfc3339_utc_with_its_milliseconds() {
        assert_eq!(
            Timestamp::from_millis(1_764_000_000_123).to_rfc3339(),
            "2025-11-24T16:00:00.123Z"
        );
        assert_eq!(Timestamp::from_secs(0).to_rfc3339(), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn a_timestamp_round_trips_through_rfc3339() {
        let parsed = Timestamp::parse_rfc3339("2026-11-25T10:00:00Z").unwrap();
        assert_eq!(parsed.secs(), 1_795_600_800);
        assert_eq!(parsed, Timestamp::from_secs(1_795_600_800));
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn seconds_round_down_also_before_1970() {
        assert_eq!(Timestamp::from_millis(1_999).secs(), 1);
        assert_eq!(Timestamp::from_millis(-1).secs(), -1);
    }
}
