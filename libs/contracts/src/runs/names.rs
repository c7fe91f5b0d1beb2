//! Identity strings of a result: test name, suite name and client result id. They are
//! rejected, never cut, when too long: cutting would merge different tests.

use std::fmt;

use serde::Serialize;

use super::limits::{MAX_NAME_BYTES, MAX_RESULT_ID_BYTES, MAX_SUITE_BYTES};

/// Why a value was refused. The message names the limit; the caller adds the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(String);

impl InvalidValue {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// Checks what every identity string must satisfy: something besides whitespace, at most
/// `limit` bytes, and no NUL (the separator inside a [`TestKey`](super::TestKey)).
fn check_identity(value: &str, limit: usize) -> Result<(), InvalidValue> {
    if value.trim().is_empty() {
        return Err(InvalidValue::new("must not be empty"));
    }
    if value.len() > limit {
        return Err(InvalidValue::new(format!(
            "must be at most {limit} bytes, got {}",
            value.len()
        )));
    }
    if value.contains('\0') {
        return Err(InvalidValue::new("must not contain NUL characters"));
    }
    Ok(())
}

macro_rules! identity_string {
    ($(#[$doc:meta])* $name:ident, $limit:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, InvalidValue> {
                let value = value.into();
                check_identity(&value, $limit)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// A value the gateway already checked (see `wire.rs`).
            pub(super) fn checked(value: String) -> Self {
                Self(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

identity_string!(
    /// A test's name, as the test framework reports it (whitespace kept).
    TestName,
    MAX_NAME_BYTES
);
identity_string!(
    /// The suite (class, file, package, describe block) a test belongs to.
    SuiteName,
    MAX_SUITE_BYTES
);
identity_string!(
    /// The id a client gives a result, unique within its run, so a resend is idempotent.
    ResultId,
    MAX_RESULT_ID_BYTES
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_within_the_limit_is_kept_verbatim() {
        let name = TestName::parse("  adds [1-2] ").unwrap();
        assert_eq!(name.as_str(), "  adds [1-2] ");
    }

    #[test]
    fn blank_names_are_refused() {
        assert_eq!(
            TestName::parse(" \t").unwrap_err().to_string(),
            "must not be empty"
        );
    }

    #[test]
    fn too_long_names_are_refused_naming_the_limit() {
        let err = TestName::parse("n".repeat(MAX_NAME_BYTES + 1)).unwrap_err();
        assert_eq!(err.to_string(), "must be at most 1024 bytes, got 1025");
        assert!(TestName::parse("n".repeat(MAX_NAME_BYTES)).is_ok());
    }

    #[test]
    fn nul_is_refused_because_it_separates_suite_and_name_in_the_key() {
        assert!(SuiteName::parse("a\0b").is_err());
    }

    #[test]
    fn result_ids_have_their_own_limit() {
        assert!(ResultId::parse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").is_ok());
        assert!(ResultId::parse("i".repeat(MAX_RESULT_ID_BYTES + 1)).is_err());
    }
}
