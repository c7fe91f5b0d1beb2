//! libtest's JSON output: `cargo test -- -Z unstable-options --format json` (nightly,
//! or `RUSTC_BOOTSTRAP=1`) and nextest's `--message-format libtest-json`.
//!
//! Each test event `ok`, `failed` or `ignored` is a result (`passed`, `failed`,
//! `skipped`) with its `exec_time`; a failed test's captured output is its output, and
//! the panic's message (after `panicked at`) its message. nextest names a test
//! `<binary id>$<test>`: the binary id is the suite. Tests started and never finished
//! when the output ends are errored.

use std::collections::BTreeSet;

use serde::Deserialize;
use verdict_contracts::runs::limits::MAX_MESSAGE_BYTES;
use verdict_contracts::runs::ResultStatus;

use super::{capped, seconds_to_ms, Parser, TestOutcome};

/// Started tests remembered at once (to report those that never finish).
const MAX_TRACKED: usize = 10_000;

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    event: String,
    name: Option<String>,
    exec_time: Option<f64>,
    stdout: Option<String>,
    message: Option<String>,
}

/// The libtest JSON reader's state.
#[derive(Default)]
pub struct Libtest {
    running: BTreeSet<String>,
}

/// The suite and the name of a test as libtest or nextest names it.
fn split_name(name: &str) -> (Option<String>, String) {
    match name.split_once('$') {
        Some((binary, test)) if !binary.is_empty() => (Some(binary.to_owned()), test.to_owned()),
        _ => (None, name.to_owned()),
    }
}

/// What a panic said: the lines after `panicked at <place>:`, up to the backtrace
/// or the note about it.
fn panic_message(stdout: &str) -> Option<String> {
    let start = stdout.find("panicked at")?;
    let after = &stdout[start..];
    let body = after.split_once('\n').map_or("", |(_, body)| body);
    let end = ["\nstack backtrace:", "\nnote: "]
        .iter()
        .filter_map(|marker| body.find(marker))
        .min()
        .unwrap_or(body.len());
    let body = &body[..end];
    let body = body.trim();
    (!body.is_empty()).then(|| capped(body.to_owned(), MAX_MESSAGE_BYTES))
}

impl Parser for Libtest {
    fn line(&mut self, line: &str, finished: &mut Vec<TestOutcome>) {
        if !line.contains("\"type\"") {
            return;
        }
        let Ok(event) = serde_json::from_str::<Event>(line) else {
            return;
        };
        let (Some(name), "test") = (event.name, event.kind.as_str()) else {
            return;
        };
        let status = match event.event.as_str() {
            "started" => {
                if self.running.len() < MAX_TRACKED {
                    self.running.insert(name);
                }
                return;
            }
            "ok" => ResultStatus::Passed,
            "failed" => ResultStatus::Failed,
            "ignored" => ResultStatus::Skipped,
            _ => return,
        };
        self.running.remove(&name);
        let (suite, test) = split_name(&name);
        let mut outcome = TestOutcome::new(suite, test, status);
        outcome.duration_ms = event.exec_time.and_then(seconds_to_ms);
        outcome.message = event
            .message
            .or_else(|| event.stdout.as_deref().and_then(panic_message));
        if status == ResultStatus::Failed {
            outcome.stdout = event.stdout;
        }
        finished.push(outcome);
    }

    fn end(&mut self, finished: &mut Vec<TestOutcome>) {
        for name in std::mem::take(&mut self.running) {
            let (suite, test) = split_name(&name);
            let mut outcome = TestOutcome::new(suite, test, ResultStatus::Errored);
            outcome.message = Some("did not finish: the output ended".to_owned());
            finished.push(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{read_all, statuses};
    use super::*;

    fn read(text: &str) -> Vec<TestOutcome> {
        read_all(&mut Libtest::default(), text)
    }

    /// `RUSTC_BOOTSTRAP=1 cargo test -- -Z unstable-options --format json --report-time`
    /// of a crate with a passing, a failing and an ignored test (rustc 1.9x, with
    /// RUST_BACKTRACE=1; the backtrace cut to two frames).
    const CARGO_TEST: &str = r#"{ "type": "suite", "event": "started", "test_count": 3 }
{ "type": "test", "event": "started", "name": "tests::adds" }
{ "type": "test", "event": "started", "name": "tests::divides" }
{ "type": "test", "name": "tests::adds", "event": "ok", "exec_time": 0.000001183 }
{ "type": "test", "event": "started", "name": "tests::later" }
{ "type": "test", "name": "tests::later", "event": "ignored", "message": "needs a network" }
{ "type": "test", "name": "tests::divides", "event": "failed", "exec_time": 0.16507889, "stdout": "\nthread 'tests::divides' (17494) panicked at src/lib.rs:6:20:\nassertion `left == right` failed\n  left: 1\n right: 2\nstack backtrace:\n   0: __rustc::rust_begin_unwind\n             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/panicking.rs:689:5\n   1: core::panicking::panic_fmt\n             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/panicking.rs:80:14\nnote: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.\n" }
{ "type": "suite", "event": "failed", "passed": 1, "failed": 1, "ignored": 1, "measured": 0, "filtered_out": 0, "exec_time": 0.168261534 }
"#;

    #[test]
    fn cargo_tests_json_gives_its_counts() {
        let outcomes = read(CARGO_TEST);
        // libtest's own summary: 1 passed; 1 failed; 1 ignored.
        assert_eq!(
            statuses(&outcomes),
            [
                ("tests::adds", ResultStatus::Passed),
                ("tests::later", ResultStatus::Skipped),
                ("tests::divides", ResultStatus::Failed),
            ]
        );
        assert_eq!(outcomes[0].duration_ms, Some(0));
        assert_eq!(outcomes[1].message.as_deref(), Some("needs a network"));
        assert_eq!(
            outcomes[2].message.as_deref(),
            Some("assertion `left == right` failed\n  left: 1\n right: 2")
        );
        assert_eq!(outcomes[2].duration_ms, Some(165));
    }

    #[test]
    fn nextest_binary_ids_are_suites() {
        let outcomes = read(
            r#"{"type":"test","event":"ok","name":"verdict-cli::run$formats::tap::tests::x","exec_time":0.5}"#,
        );
        assert_eq!(outcomes[0].suite.as_deref(), Some("verdict-cli::run"));
        assert_eq!(outcomes[0].name, "formats::tap::tests::x");
        assert_eq!(outcomes[0].duration_ms, Some(500));
    }

    #[test]
    fn a_test_started_and_never_finished_is_errored() {
        let outcomes = read(r#"{ "type": "test", "event": "started", "name": "hangs" }"#);
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].status, ResultStatus::Errored);
    }
}
