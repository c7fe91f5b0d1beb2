//! Attempts of one test within a run.

use std::num::NonZeroU32;

use serde::Serialize;

use super::limits::MAX_ATTEMPT;
use super::names::InvalidValue;

/// Which execution of a test in a run this is: 1 for the first, 2 for the first retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Attempt(NonZeroU32);

impl Attempt {
    pub const FIRST: Attempt = Attempt(NonZeroU32::MIN);

    pub fn new(number: u32) -> Result<Self, InvalidValue> {
        match NonZeroU32::new(number) {
            Some(number) if number.get() <= MAX_ATTEMPT => Ok(Self(number)),
            _ => Err(InvalidValue::new(format!(
                "must be between 1 and {MAX_ATTEMPT}, got {number}"
            ))),
        }
    }

    pub const fn get(self) -> u32 {
        self.0.get()
    }

    /// An attempt the gateway already checked (see `wire.rs`); 0 cannot be one.
    pub(super) fn checked(number: u32) -> Self {
        NonZeroU32::new(number).map_or(Self::FIRST, Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_outside_the_range_are_refused() {
        assert!(Attempt::new(0).is_err());
        assert_eq!(Attempt::new(1), Ok(Attempt::FIRST));
        assert!(Attempt::new(MAX_ATTEMPT).is_ok());
        assert_eq!(
            Attempt::new(MAX_ATTEMPT + 1).unwrap_err().to_string(),
            "must be between 1 and 100, got 101"
        );
    }
}
