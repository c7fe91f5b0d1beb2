//! The words a client searches for (the `q` of the run page's results and of the test
//! catalog), checked once whatever index answers them.

/// The most bytes a search may hold.
pub const MAX_SEARCH_BYTES: usize = 256;
/// The most words a search may hold.
pub const MAX_SEARCH_WORDS: usize = 16;

/// Search text within the limits, free of control characters other than whitespace,
/// holding at least one word. Control characters are refused because FTS5 reads its
/// query as a C string: a NUL would cut a phrase open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

/// Why a search was refused; the message completes "q: ".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSearch {
    #[error("must be at most {MAX_SEARCH_BYTES} bytes")]
    TooLong,
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must hold at most {MAX_SEARCH_WORDS} words")]
    TooManyWords,
}

impl SearchText {
    /// The search in `q`, or `None` when it holds no word.
    pub fn parse(q: &str) -> Result<Option<Self>, InvalidSearch> {
        if q.len() > MAX_SEARCH_BYTES {
            return Err(InvalidSearch::TooLong);
        }
        if q.chars().any(|c| c.is_control() && !c.is_whitespace()) {
            return Err(InvalidSearch::ControlCharacter);
        }
        let words = q.split_whitespace().count();
        if words > MAX_SEARCH_WORDS {
            return Err(InvalidSearch::TooManyWords);
        }
        Ok((words > 0).then(|| SearchText(q.trim().to_owned())))
    }

    /// The text without surrounding whitespace.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.0.split_whitespace()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_text_is_no_search() {
        assert_eq!(SearchText::parse(" \t\n "), Ok(None));
    }

    #[test]
    fn a_search_keeps_its_words_without_surrounding_whitespace() {
        let search = SearchText::parse("  disk  full\t").unwrap().unwrap();
        assert_eq!(search.as_str(), "disk  full");
        assert_eq!(search.words().collect::<Vec<_>>(), ["disk", "full"]);
    }

    #[test]
    fn a_search_over_the_byte_limit_is_refused() {
        let q = "a".repeat(MAX_SEARCH_BYTES + 1);
        assert_eq!(SearchText::parse(&q), Err(InvalidSearch::TooLong));
        assert!(SearchText::parse(&q[1..]).unwrap().is_some());
    }

    #[test]
    fn a_search_over_the_word_limit_is_refused() {
        let q = vec!["w"; MAX_SEARCH_WORDS + 1].join(" ");
        assert_eq!(SearchText::parse(&q), Err(InvalidSearch::TooManyWords));
        assert!(SearchText::parse(&q[2..]).unwrap().is_some());
    }

    #[test]
    fn control_characters_other_than_whitespace_are_refused() {
        assert_eq!(
            SearchText::parse("a\0b"),
            Err(InvalidSearch::ControlCharacter)
        );
        assert_eq!(
            SearchText::parse("a\u{7f}"),
            Err(InvalidSearch::ControlCharacter)
        );
        assert!(SearchText::parse("a\tb\nc").unwrap().is_some());
    }
}
