//! A test's identity across runs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::names::{SuiteName, TestName};

/// Identifies a test across runs of a project: the first 16 bytes of
/// `SHA-256(suite || 0x00 || name)`, written as 32 lowercase hex digits. A missing suite
/// hashes as the empty string. NUL cannot occur in either part (see
/// [`TestName::parse`]), so the separator makes the encoding unambiguous. 128 bits keep
/// accidental collisions out of reach for any realistic number of tests, and the fixed
/// width suits URL paths and index keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct TestKey([u8; 16]);

const KEY_BYTES: usize = 16;
const KEY_HEX_DIGITS: usize = KEY_BYTES * 2;

impl TestKey {
    pub fn derive(suite: Option<&SuiteName>, name: &TestName) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(suite.map(SuiteName::as_str).unwrap_or_default().as_bytes());
        hasher.update([0u8]);
        hasher.update(name.as_str().as_bytes());
        let digest = hasher.finalize();
        let mut key = [0u8; KEY_BYTES];
        key.copy_from_slice(&digest[..KEY_BYTES]);
        Self(key)
    }
}

/// A string that is not a test key, such as a mistyped URL path segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a test key is {KEY_HEX_DIGITS} lowercase hexadecimal digits")]
pub struct InvalidTestKey;

impl FromStr for TestKey {
    type Err = InvalidTestKey;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text.as_bytes();
        if digits.len() != KEY_HEX_DIGITS {
            return Err(InvalidTestKey);
        }
        let mut key = [0u8; KEY_BYTES];
        for (byte, pair) in key.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Ok(Self(key))
    }
}

fn hex_value(digit: u8) -> Result<u8, InvalidTestKey> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        _ => Err(InvalidTestKey),
    }
}

impl fmt::Display for TestKey {
    /// Written at once rather than a byte at a time: the runs service writes a key for
    /// every result it applies, and sixteen formatted writes cost more than the hash.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; KEY_HEX_DIGITS];
        for (pair, byte) in text.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        // Only ASCII digits and letters were written.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl From<TestKey> for String {
    fn from(key: TestKey) -> Self {
        key.to_string()
    }
}

impl TryFrom<String> for TestKey {
    type Error = InvalidTestKey;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(suite: Option<&str>, name: &str) -> TestKey {
        let suite = suite.map(|s| SuiteName::parse(s).unwrap());
        TestKey::derive(suite.as_ref(), &TestName::parse(name).unwrap())
    }

    #[test]
    fn the_key_is_the_truncated_sha256_of_suite_nul_name() {
        // printf 'tests.test_math\0test_adds' | sha256sum | cut -c1-32
        assert_eq!(
            key(Some("tests.test_math"), "test_adds").to_string(),
            "8d87b0ac62891d337b885fff8e07a741"
        );
    }

    #[test]
    fn suite_and_name_are_not_interchangeable() {
        assert_ne!(key(Some("ab"), "c"), key(Some("a"), "bc"));
        assert_ne!(key(None, "a"), key(Some("a"), "a"));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for text in [
            "",
            "2a8c3f5d1d1bf2e4ee4b5a7e3a1bb0d",
            "2a8c3f5d1d1bf2e4ee4b5a7e3a1bb0d1f",
            "2A8C3F5D1D1BF2E4EE4B5A7E3A1BB0D1",
            "2a8c3f5d1d1bf2e4ee4b5a7e3a1bb0dg",
            "../../etc/passwd/../../../../../x",
        ] {
            assert_eq!(text.parse::<TestKey>(), Err(InvalidTestKey), "{text:?}");
        }
    }

    #[test]
    fn keys_travel_as_strings() {
        let original = key(None, "login works");
        let json = serde_json::to_string(&original).unwrap();
        assert_eq!(json, format!("\"{original}\""));
        assert_eq!(serde_json::from_str::<TestKey>(&json).unwrap(), original);
        assert!(serde_json::from_str::<TestKey>("\"nope\"").is_err());
    }

    proptest! {
        #[test]
        fn every_key_survives_its_string_form(bytes in any::<[u8; 16]>()) {
            let key = TestKey(bytes);
            prop_assert_eq!(key.to_string().parse::<TestKey>(), Ok(key));
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in ".{0,40}") {
            let _ = text.parse::<TestKey>();
        }
    }
}
