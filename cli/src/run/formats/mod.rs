//! Readers of the machine-readable output test runners print while they run: each takes
//! one line at a time and answers the tests that line (or the lines before it) finished.
//! They are pure: no I/O, no clock. A line they do not understand is ignored, never an
//! error, since a test command's output mixes their format with anything else.

pub mod go_test;
pub mod libtest;
pub mod pytest_log;
pub mod tap;

use clap::ValueEnum;
use verdict_contracts::runs::limits::{
    MAX_DURATION_MS, MAX_MESSAGE_BYTES, MAX_NAME_BYTES, MAX_OUTPUT_BYTES, MAX_SUITE_BYTES,
    MAX_TRACE_BYTES,
};
use verdict_contracts::runs::{ResultInput, ResultStatus};

/// The output a test command prints, as `--format` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Every format below, told line by line by the line's shape.
    Auto,
    /// TAP 13 and 14 (prove -v, node --test --test-reporter=tap, bats --tap).
    Tap,
    /// `go test -json`.
    GoTest,
    /// libtest JSON (`cargo test -- -Z unstable-options --format json`, nextest's
    /// libtest-json).
    Libtest,
    /// pytest's `--report-log` JSON lines.
    PytestLog,
    /// Nothing is read from the output: only --follow files and --junit-dir reports.
    None,
}

/// One test's outcome as a runner printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub suite: Option<String>,
    pub name: String,
    pub status: ResultStatus,
    pub duration_ms: Option<u64>,
    pub message: Option<String>,
    pub trace: Option<String>,
    pub stdout: Option<String>,
}

impl TestOutcome {
    pub fn new(suite: Option<String>, name: impl Into<String>, status: ResultStatus) -> Self {
        TestOutcome {
            suite,
            name: name.into(),
            status,
            duration_ms: None,
            message: None,
            trace: None,
            stdout: None,
        }
    }

    /// The result the API takes (its client id is given when it is sent): names are cut
    /// to their limits
    /// rather than refused (a refused name would lose the whole batch), NUL characters
    /// replaced, an empty name called "(unnamed)"; free text is cut to its limit.
    pub fn into_input(self) -> ResultInput {
        let name = identity(&self.name, MAX_NAME_BYTES).unwrap_or_else(|| "(unnamed)".into());
        ResultInput {
            suite: self
                .suite
                .as_deref()
                .and_then(|suite| identity(suite, MAX_SUITE_BYTES)),
            name,
            status: self.status.as_str().to_owned(),
            duration_ms: self.duration_ms.map(|ms| ms.min(MAX_DURATION_MS)),
            message: self
                .message
                .filter(|m| !m.trim().is_empty())
                .map(|m| capped(m, MAX_MESSAGE_BYTES)),
            trace: self
                .trace
                .filter(|t| !t.trim().is_empty())
                .map(|t| capped(t, MAX_TRACE_BYTES)),
            stdout: self
                .stdout
                .filter(|s| !s.is_empty())
                .map(|s| capped(s, MAX_OUTPUT_BYTES)),
            ..ResultInput::default()
        }
    }
}

/// An identity string the API accepts, or None when nothing but whitespace is left.
fn identity(value: &str, limit: usize) -> Option<String> {
    let value = value.replace('\0', "\u{FFFD}");
    let value = capped(value, limit);
    (!value.trim().is_empty()).then_some(value)
}

/// `text` cut to at most `limit` bytes, at a character boundary.
pub fn capped(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Appends `line` to `buffer` unless that would pass `limit` bytes (output beyond it is
/// dropped: a test that prints megabytes must not hold megabytes per test here).
pub fn append_bounded(buffer: &mut String, line: &str, limit: usize) {
    if buffer.len() + line.len() <= limit {
        buffer.push_str(line);
    }
}

/// Seconds as a runner prints them (a float) in whole milliseconds.
pub fn seconds_to_ms(seconds: f64) -> Option<u64> {
    (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1000.0).round() as u64)
}

/// A reader of one format.
pub trait Parser {
    /// Reads one line (without its line ending); pushes the tests it finished.
    fn line(&mut self, line: &str, finished: &mut Vec<TestOutcome>);
    /// The output ended: pushes what it still held.
    fn end(&mut self, finished: &mut Vec<TestOutcome>);
}

/// The reader of `--format`: one format, or each line sent to the reader its shape
/// calls for (JSON lines by their keys; the rest to TAP, which takes only test lines
/// that look like TAP, and to go test's reader, which takes only its build failures).
pub struct Stream {
    format: Format,
    tap: tap::Tap,
    go_test: go_test::GoTest,
    libtest: libtest::Libtest,
    pytest_log: pytest_log::PytestLog,
}

impl Stream {
    pub fn new(format: Format) -> Self {
        Stream {
            format,
            tap: tap::Tap::new(format == Format::Tap),
            go_test: go_test::GoTest::default(),
            libtest: libtest::Libtest::default(),
            pytest_log: pytest_log::PytestLog::default(),
        }
    }

    /// Reads one line of output, which need not be UTF-8 (invalid bytes are replaced).
    pub fn line(&mut self, line: &[u8], finished: &mut Vec<TestOutcome>) {
        let line = String::from_utf8_lossy(line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        match self.format {
            Format::Auto => {
                if line.trim_start().starts_with('{') {
                    // Each JSON reader ignores the objects of the others.
                    self.go_test.line(line, finished);
                    self.libtest.line(line, finished);
                    self.pytest_log.line(line, finished);
                } else {
                    // go test's build failures are text lines.
                    self.go_test.line(line, finished);
                    self.tap.line(line, finished);
                }
            }
            Format::Tap => self.tap.line(line, finished),
            Format::GoTest => self.go_test.line(line, finished),
            Format::Libtest => self.libtest.line(line, finished),
            Format::PytestLog => self.pytest_log.line(line, finished),
            Format::None => {}
        }
    }

    /// The output ended.
    pub fn end(&mut self, finished: &mut Vec<TestOutcome>) {
        self.tap.end(finished);
        self.go_test.end(finished);
        self.libtest.end(finished);
        self.pytest_log.end(finished);
    }

    /// No line came for a while: TAP's failed test waiting for its diagnostics is sent
    /// as it is, so that a slow next test does not hold it back.
    pub fn idle(&mut self, finished: &mut Vec<TestOutcome>) {
        self.tap.flush(finished);
    }
}

/// Every outcome a parser reads from `text`, to its end (for the parsers' tests).
#[cfg(test)]
pub fn read_all(parser: &mut impl Parser, text: &str) -> Vec<TestOutcome> {
    let mut finished = Vec::new();
    for line in text.lines() {
        parser.line(line, &mut finished);
    }
    parser.end(&mut finished);
    finished
}

/// Each outcome's name and status (for the parsers' tests).
#[cfg(test)]
pub fn statuses(outcomes: &[TestOutcome]) -> Vec<(&str, ResultStatus)> {
    outcomes
        .iter()
        .map(|t| (t.name.as_str(), t.status))
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use verdict_contracts::runs::limits::MAX_RESULTS_PER_BATCH;
    use verdict_contracts::runs::{SuiteName, TestName};

    use super::*;

    #[test]
    fn names_are_cut_to_their_limit_not_refused() {
        let outcome = TestOutcome::new(
            Some("s".repeat(5000)),
            "é".repeat(MAX_NAME_BYTES),
            ResultStatus::Passed,
        );
        let input = outcome.into_input();
        assert!(TestName::parse(input.name.clone()).is_ok());
        assert!(SuiteName::parse(input.suite.unwrap()).is_ok());
        assert_eq!(input.name.chars().next(), Some('é'));
    }

    #[test]
    fn an_empty_name_is_called_unnamed_and_nul_is_replaced() {
        let input = TestOutcome::new(Some(" ".into()), "", ResultStatus::Failed).into_input();
        assert_eq!(input.name, "(unnamed)");
        assert_eq!(input.suite, None);
        let input = TestOutcome::new(None, "a\0b", ResultStatus::Failed).into_input();
        assert_eq!(input.name, "a\u{FFFD}b");
    }

    #[test]
    fn auto_sends_each_line_to_the_format_it_looks_like() {
        let mut stream = Stream::new(Format::Auto);
        let mut finished = Vec::new();
        let lines = [
            "TAP version 13",
            "ok 1 - tap test",
            r#"{"Action":"pass","Package":"example.com/m","Test":"TestGo","Elapsed":0.5}"#,
            r#"{ "type": "test", "event": "ok", "name": "tests::libtest" }"#,
            "plain text the command printed",
            "FAIL\texample.com/broken [build failed]",
            r#"{"not": "a known object"}"#,
        ];
        for line in lines {
            stream.line(line.as_bytes(), &mut finished);
        }
        stream.end(&mut finished);
        let names: Vec<&str> = finished.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["tap test", "TestGo", "tests::libtest", "TestMain"]);
    }

    proptest! {
        #[test]
        fn arbitrary_output_never_panics_and_yields_results_the_api_takes(
            lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..50),
            format in prop_oneof![
                Just(Format::Auto), Just(Format::Tap), Just(Format::GoTest),
                Just(Format::Libtest), Just(Format::PytestLog),
            ],
        ) {
            let mut stream = Stream::new(format);
            let mut finished = Vec::new();
            for line in &lines {
                stream.line(line, &mut finished);
            }
            stream.idle(&mut finished);
            stream.end(&mut finished);
            prop_assert!(finished.len() <= lines.len() * MAX_RESULTS_PER_BATCH);
            for outcome in finished {
                let input = outcome.into_input();
                prop_assert!(TestName::parse(input.name).is_ok());
                if let Some(suite) = input.suite {
                    prop_assert!(SuiteName::parse(suite).is_ok());
                }
            }
        }

        #[test]
        fn arbitrary_lines_shaped_like_the_formats_never_panic(
            lines in proptest::collection::vec(prop_oneof![
                "(not )?ok [0-9]{0,3}( - [a-z#\\\\ ]{0,10})?( # (SKIP|TODO|skip)[a-z ]{0,5})?",
                "1\\.\\.[0-9]{0,3}",
                "  (---|\\.\\.\\.|message: x)",
                "# ?[a-zA-Z:]{0,8}",
                "TAP version 1[34]",
                "\\{\"Action\":\"(run|pass|fail|skip|output)\",\"Package\":\"p\",(\"Test\":\"T[ab]\",)?\"Output\":\"x\\\\n\"\\}",
                "\\{\"type\":\"(test|suite)\",\"event\":\"(started|ok|failed|ignored)\",\"name\":\"[ab]\"\\}",
                "\\{\"\\$report_type\":\"TestReport\",\"nodeid\":\"t.py::[ab]\",\"when\":\"(setup|call|teardown)\",\"outcome\":\"(passed|failed|skipped)\"\\}",
            ], 0..60),
        ) {
            let mut stream = Stream::new(Format::Auto);
            let mut finished = Vec::new();
            for line in &lines {
                stream.line(line.as_bytes(), &mut finished);
            }
            stream.end(&mut finished);
            prop_assert!(finished.len() <= 2 * lines.len());
        }
    }
}
