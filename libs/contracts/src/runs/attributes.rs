//! Key/value labels on a result (browser, shard, parameters) and the properties an
//! imported report attaches to a test case.

use std::collections::BTreeMap;

use serde::Serialize;

use super::limits::{MAX_ATTRIBUTES, MAX_ATTRIBUTE_KEY_BYTES, MAX_ATTRIBUTE_VALUE_BYTES};
use super::text::CappedTextBuilder;

/// At most [`MAX_ATTRIBUTES`] pairs with non-empty keys of at most
/// [`MAX_ATTRIBUTE_KEY_BYTES`] and values of at most [`MAX_ATTRIBUTE_VALUE_BYTES`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Attributes(BTreeMap<String, String>);

/// One way a client's attributes break the limits; `key` is set when one entry is at
/// fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeProblem {
    pub key: Option<String>,
    pub reason: String,
}

impl Attributes {
    /// Attributes the gateway already checked (see `wire.rs`).
    pub(super) fn checked(pairs: BTreeMap<String, String>) -> Self {
        Self(pairs)
    }

    /// The attributes a client sent, or every way they exceed the limits.
    pub fn parse(pairs: BTreeMap<String, String>) -> Result<Self, Vec<AttributeProblem>> {
        let mut problems = Vec::new();
        if pairs.len() > MAX_ATTRIBUTES {
            problems.push(AttributeProblem {
                key: None,
                reason: format!(
                    "must hold at most {MAX_ATTRIBUTES} entries, got {}",
                    pairs.len()
                ),
            });
        }
        for (key, value) in &pairs {
            if key.is_empty() {
                problems.push(AttributeProblem {
                    key: None,
                    reason: "keys must not be empty".to_owned(),
                });
            } else if key.len() > MAX_ATTRIBUTE_KEY_BYTES {
                problems.push(AttributeProblem {
                    key: None,
                    reason: format!(
                        "keys must be at most {MAX_ATTRIBUTE_KEY_BYTES} bytes, got one of {}",
                        key.len()
                    ),
                });
            } else if value.len() > MAX_ATTRIBUTE_VALUE_BYTES {
                problems.push(AttributeProblem {
                    key: Some(key.clone()),
                    reason: format!(
                        "must be at most {MAX_ATTRIBUTE_VALUE_BYTES} bytes, got {}",
                        value.len()
                    ),
                });
            }
        }
        if problems.is_empty() {
            Ok(Self(pairs))
        } else {
            Err(problems)
        }
    }

    /// Adds a pair from an imported report, where the report is already written and a
    /// dropped property is better than a refused import: pairs beyond the count limit
    /// and pairs with an empty or too long key are skipped, long values are truncated.
    /// An existing key is overwritten.
    pub fn insert_lenient(&mut self, key: &str, value: &str) {
        let full = !self.0.contains_key(key) && self.0.len() >= MAX_ATTRIBUTES;
        if key.is_empty() || key.len() > MAX_ATTRIBUTE_KEY_BYTES || full {
            return;
        }
        let mut capped = CappedTextBuilder::with_limit(MAX_ATTRIBUTE_VALUE_BYTES);
        capped.push_str(value);
        self.0.insert(key.to_owned(), capped.finish_string());
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(n: usize) -> BTreeMap<String, String> {
        (0..n).map(|i| (format!("k{i}"), format!("v{i}"))).collect()
    }

    #[test]
    fn attributes_within_the_limits_are_kept() {
        let attributes = Attributes::parse(pairs(MAX_ATTRIBUTES)).unwrap();
        assert_eq!(attributes.len(), MAX_ATTRIBUTES);
        assert_eq!(attributes.get("k3"), Some("v3"));
    }

    #[test]
    fn too_many_attributes_are_refused() {
        let problems = Attributes::parse(pairs(MAX_ATTRIBUTES + 1)).unwrap_err();
        assert_eq!(problems[0].reason, "must hold at most 64 entries, got 65");
    }

    #[test]
    fn long_keys_and_values_are_refused_naming_the_limit() {
        let mut input = BTreeMap::new();
        input.insert("k".repeat(MAX_ATTRIBUTE_KEY_BYTES + 1), "v".to_owned());
        input.insert(
            "browser".to_owned(),
            "v".repeat(MAX_ATTRIBUTE_VALUE_BYTES + 1),
        );
        let problems = Attributes::parse(input).unwrap_err();
        assert_eq!(problems.len(), 2);
        assert!(problems
            .iter()
            .any(|p| p.key.is_none() && p.reason.contains("128 bytes")));
        assert!(problems
            .iter()
            .any(|p| p.key.as_deref() == Some("browser") && p.reason.contains("1024 bytes")));
    }

    #[test]
    fn lenient_inserts_stay_within_the_limits() {
        let mut attributes = Attributes::default();
        for i in 0..100 {
            attributes.insert_lenient(&format!("k{i}"), "v");
        }
        attributes.insert_lenient("k0", &"x".repeat(5000));
        attributes.insert_lenient(&"k".repeat(200), "v");
        attributes.insert_lenient("", "v");
        assert_eq!(attributes.len(), MAX_ATTRIBUTES);
        assert_eq!(
            attributes.get("k0").map(str::len),
            Some(MAX_ATTRIBUTE_VALUE_BYTES)
        );
    }
}
