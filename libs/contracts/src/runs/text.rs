//! Free text on a result (message, trace, stdout, stderr) is kept up to a limit and cut
//! beyond it, at a UTF-8 character boundary, with a marker that says how much was cut.
//! The marker fits inside the limit, so a stored field never exceeds it.

use serde::Serialize;

use super::limits::{MAX_MESSAGE_BYTES, MAX_OUTPUT_BYTES, MAX_TRACE_BYTES};

/// The truncated free-text fields of a result, each with its own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    Message,
    Trace,
    Stdout,
    Stderr,
}

impl TextField {
    /// The most bytes the field keeps, marker included.
    pub const fn limit(self) -> usize {
        match self {
            TextField::Message => MAX_MESSAGE_BYTES,
            TextField::Trace => MAX_TRACE_BYTES,
            TextField::Stdout | TextField::Stderr => MAX_OUTPUT_BYTES,
        }
    }

    /// `text`, truncated to this field's limit.
    pub fn cap(self, text: impl Into<String>) -> CappedText {
        CappedText(cap_to(text.into(), 0, self.limit()))
    }
}

/// Text that fits its field's limit: built only by [`TextField::cap`] or
/// [`CappedTextBuilder`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CappedText(String);

impl CappedText {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A text the gateway already capped (see `wire.rs`).
    pub(super) fn checked(text: String) -> Self {
        Self(text)
    }

    /// Whether the text holds nothing but whitespace; reports often wrap nothing in
    /// newlines.
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// The text without leading and trailing whitespace, for traces that report writers
    /// pad with newlines. Only ever shorter, so still within the limit.
    pub fn trimmed(self) -> CappedText {
        let text = self.0.trim();
        if text.len() == self.0.len() {
            self
        } else {
            CappedText(text.to_owned())
        }
    }
}

/// Collects text that arrives in pieces (a streamed XML text node) while holding at most
/// the limit in memory; the rest is only counted. Invalid UTF-8 becomes U+FFFD.
#[derive(Debug)]
pub struct CappedTextBuilder {
    kept: Vec<u8>,
    dropped: u64,
    limit: usize,
}

impl CappedTextBuilder {
    pub fn new(field: TextField) -> Self {
        Self::with_limit(field.limit())
    }

    /// A builder for limits that are not a [`TextField`], such as attribute values.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            kept: Vec::new(),
            dropped: 0,
            limit,
        }
    }

    pub fn push_str(&mut self, text: &str) {
        self.push_bytes(text.as_bytes());
    }

    pub fn push_bytes(&mut self, bytes: &[u8]) {
        let room = self.limit.saturating_sub(self.kept.len());
        let taken = bytes.len().min(room);
        self.kept.extend_from_slice(&bytes[..taken]);
        self.dropped += (bytes.len() - taken) as u64;
    }

    pub fn finish(self) -> CappedText {
        CappedText(self.finish_string())
    }

    pub fn finish_string(self) -> String {
        let text = match String::from_utf8(self.kept) {
            Ok(text) => text,
            Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
        };
        cap_to(text, self.dropped, self.limit)
    }
}

/// `text` (followed by `dropped` bytes already discarded) cut to fit `limit` bytes,
/// marker included. Limits below the marker's length are not used.
fn cap_to(mut text: String, dropped: u64, limit: usize) -> String {
    if dropped == 0 && text.len() <= limit {
        return text;
    }
    let original = text.len() as u64 + dropped;
    // A first guess leaves room for a marker counting every byte; the marker for what
    // that guess cuts may be shorter, and the second guess cuts even less, so its
    // marker is no longer than the first: the result never exceeds the limit.
    let keep_for =
        |cut: u64| floor_char_boundary(&text, limit.saturating_sub(truncation_marker(cut).len()));
    let first_guess = keep_for(original);
    let keep = keep_for(original - first_guess as u64);
    text.truncate(keep);
    text.push_str(&truncation_marker(original - keep as u64));
    text
}

fn truncation_marker(cut: u64) -> String {
    format!("\n…[truncated {cut} bytes]")
}

fn floor_char_boundary(text: &str, index: usize) -> usize {
    if index >= text.len() {
        return text.len();
    }
    (0..=index)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_text_is_kept_as_it_is() {
        assert_eq!(TextField::Message.cap("boom").as_str(), "boom");
    }

    #[test]
    fn long_text_is_cut_with_a_marker_inside_the_limit() {
        let text = "x".repeat(MAX_MESSAGE_BYTES + 10);
        let capped = TextField::Message.cap(text);
        assert_eq!(capped.as_str().len(), MAX_MESSAGE_BYTES);
        let marker_len = "\n…[truncated 38 bytes]".len();
        let kept = MAX_MESSAGE_BYTES - marker_len;
        assert!(capped.as_str().ends_with(&format!(
            "\n…[truncated {} bytes]",
            MAX_MESSAGE_BYTES + 10 - kept
        )));
    }

    #[test]
    fn truncation_never_splits_a_character() {
        let text = "é".repeat(MAX_MESSAGE_BYTES);
        let capped = TextField::Message.cap(text);
        assert!(capped.as_str().len() <= MAX_MESSAGE_BYTES);
        let body = capped.as_str().split('\n').next().unwrap_or_default();
        assert!(body.chars().all(|c| c == 'é'));
    }

    #[test]
    fn the_builder_counts_what_it_does_not_keep() {
        let mut builder = CappedTextBuilder::with_limit(64);
        for _ in 0..100 {
            builder.push_str("0123456789");
        }
        let text = builder.finish_string();
        assert_eq!(text.len(), 64);
        let kept = text.split('\n').next().unwrap_or_default().len();
        assert!(text.ends_with(&format!("[truncated {} bytes]", 1000 - kept)));
    }

    #[test]
    fn the_builder_replaces_invalid_utf8() {
        let mut builder = CappedTextBuilder::new(TextField::Stdout);
        builder.push_bytes(b"ok \xff\xfe end");
        assert_eq!(builder.finish().as_str(), "ok \u{fffd}\u{fffd} end");
    }

    #[test]
    fn a_character_split_across_pushes_survives() {
        let mut builder = CappedTextBuilder::new(TextField::Stdout);
        let bytes = "ü".as_bytes();
        builder.push_bytes(&bytes[..1]);
        builder.push_bytes(&bytes[1..]);
        assert_eq!(builder.finish().as_str(), "ü");
    }

    proptest! {
        #[test]
        fn capped_text_fits_its_limit(text in any::<String>(), extra in 0usize..300, limit in 64usize..200) {
            let mut builder = CappedTextBuilder::with_limit(limit);
            builder.push_str(&text);
            builder.push_str(&"y".repeat(extra));
            let capped = builder.finish_string();
            prop_assert!(capped.len() <= limit);
            if text.len() + extra <= limit {
                prop_assert_eq!(capped, format!("{text}{}", "y".repeat(extra)));
            }
        }
    }
}
