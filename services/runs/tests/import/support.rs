//! Helpers shared by the import tests.

use std::io::{self, Read};
use std::path::Path;

use verdict_runs::domain::limits::{
    MAX_ATTRIBUTES, MAX_ATTRIBUTE_KEY_BYTES, MAX_ATTRIBUTE_VALUE_BYTES, MAX_MESSAGE_BYTES,
    MAX_NAME_BYTES, MAX_OUTPUT_BYTES, MAX_SUITE_BYTES, MAX_TRACE_BYTES,
};
use verdict_runs::domain::{CappedText, NewResult};
use verdict_runs::import::{ImportError, Location, ParsedReport};

pub const FIXTURES: [&str; 6] = [
    "pytest.xml",
    "jest-junit.xml",
    "surefire.xml",
    "gotestsum.xml",
    "playwright.xml",
    "ctrf.json",
];

pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Every attempt of the named test, in report order.
pub fn attempts<'a>(report: &'a ParsedReport, name: &str) -> Vec<&'a NewResult> {
    let found: Vec<_> = report
        .results
        .iter()
        .filter(|result| result.name.as_str() == name)
        .collect();
    assert!(!found.is_empty(), "no result named {name:?}");
    found
}

/// The only (or last) attempt of the named test.
pub fn result<'a>(report: &'a ParsedReport, name: &str) -> &'a NewResult {
    attempts(report, name).into_iter().last().unwrap()
}

pub fn text(text: &Option<CappedText>) -> &str {
    text.as_ref().map_or("", CappedText::as_str)
}

/// Hands out its bytes a few at a time, as a slow network would.
pub struct Trickle<'a> {
    pub bytes: &'a [u8],
    pub step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(out.len()).min(self.bytes.len());
        out[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

/// Asserts that every field of every result is within the limits.
pub fn assert_within_limits(report: &ParsedReport) {
    for result in &report.results {
        assert!(result.name.as_str().len() <= MAX_NAME_BYTES);
        assert!(result
            .suite
            .as_ref()
            .is_none_or(|s| s.as_str().len() <= MAX_SUITE_BYTES));
        assert!(text(&result.message).len() <= MAX_MESSAGE_BYTES);
        assert!(text(&result.trace).len() <= MAX_TRACE_BYTES);
        assert!(text(&result.stdout).len() <= MAX_OUTPUT_BYTES);
        assert!(text(&result.stderr).len() <= MAX_OUTPUT_BYTES);
        assert!(result.attributes.len() <= MAX_ATTRIBUTES);
        for (key, value) in result.attributes.iter() {
            assert!(!key.is_empty() && key.len() <= MAX_ATTRIBUTE_KEY_BYTES);
            assert!(value.len() <= MAX_ATTRIBUTE_VALUE_BYTES);
        }
    }
    for suite in &report.suites {
        assert!(text(&suite.stdout).len() <= MAX_OUTPUT_BYTES);
        assert!(text(&suite.stderr).len() <= MAX_OUTPUT_BYTES);
        assert!(suite.properties.len() <= MAX_ATTRIBUTES);
    }
}

/// The line and column of a syntax error, failing the test for any other error.
pub fn malformed_at(err: &ImportError) -> (u64, u64) {
    match err {
        ImportError::Malformed {
            at: Location::Position { line, column },
            ..
        } => (*line, *column),
        other => panic!("expected a malformed-input error, got {other:?}"),
    }
}

/// Asserts that an error places itself at a real position or path.
pub fn assert_located(err: &ImportError) {
    match err {
        ImportError::Malformed { at, .. } | ImportError::Invalid { at, .. } => match at {
            Location::Position { line, column } => assert!(*line >= 1 && *column >= 1, "{err}"),
            Location::Path(path) => assert!(path.starts_with("results"), "{err}"),
        },
        ImportError::TooLarge { .. } => {}
        ImportError::UnknownFormat(found) => assert!(!found.is_empty(), "{err}"),
        ImportError::Read(io) => panic!("reading from memory failed: {io}"),
    }
}
