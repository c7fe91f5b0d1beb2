//! `go test -json` (test2json events, one JSON object a line).
//!
//! Every `pass`, `fail` or `skip` event of a test (subtests included, as `go test`
//! reports them) is a result in the package's suite, with the elapsed time; a failed or
//! skipped test's output, less the `=== RUN` / `--- FAIL` framing, is its message. A
//! package that failed with no failed test (a panic in TestMain, a timeout, a build
//! failure) gets an errored `TestMain` result, and its tests that never finished are
//! errored too.

use std::collections::HashMap;

use serde::Deserialize;
use verdict_contracts::runs::limits::MAX_MESSAGE_BYTES;
use verdict_contracts::runs::ResultStatus;

use super::{append_bounded, seconds_to_ms, Parser, TestOutcome};

/// Tests (and packages) whose output is kept at once; beyond, output is not kept.
const MAX_TRACKED: usize = 10_000;
/// Output kept per test: enough for the failure's lines.
const MAX_TEST_OUTPUT: usize = 64 * 1024;
/// The name of the result of a package that failed outside its tests.
const PACKAGE_RESULT: &str = "TestMain";

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "Action")]
    action: String,
    #[serde(rename = "Package", default)]
    package: String,
    #[serde(rename = "Test")]
    test: Option<String>,
    #[serde(rename = "Elapsed")]
    elapsed: Option<f64>,
    #[serde(rename = "Output")]
    output: Option<String>,
}

#[derive(Default)]
struct Package {
    /// Tests started and not finished, with their output.
    running: HashMap<String, String>,
    failed_tests: bool,
    output: String,
}

/// The `go test -json` reader's state.
#[derive(Default)]
pub struct GoTest {
    packages: HashMap<String, Package>,
}

impl GoTest {
    fn package(&mut self, name: &str) -> Option<&mut Package> {
        if !self.packages.contains_key(name) {
            let tracked: usize = self.packages.values().map(|p| p.running.len() + 1).sum();
            if tracked >= MAX_TRACKED {
                return None;
            }
        }
        Some(self.packages.entry(name.to_owned()).or_default())
    }

    fn event(&mut self, event: Event, finished: &mut Vec<TestOutcome>) {
        let status = match event.action.as_str() {
            "pass" => Some(ResultStatus::Passed),
            "fail" => Some(ResultStatus::Failed),
            "skip" => Some(ResultStatus::Skipped),
            _ => None,
        };
        let package_name = event.package;
        let Some(package) = self.package(&package_name) else {
            return;
        };
        match (event.test, status) {
            (Some(test), None) => {
                let output = package.running.entry(test).or_default();
                if let Some(text) = event.output {
                    append_bounded(output, &text, MAX_TEST_OUTPUT);
                }
            }
            (Some(test), Some(status)) => {
                let output = package.running.remove(&test).unwrap_or_default();
                package.failed_tests |= status == ResultStatus::Failed;
                let mut outcome = TestOutcome::new(Some(package_name), test, status);
                outcome.duration_ms = event.elapsed.and_then(seconds_to_ms);
                if status != ResultStatus::Passed {
                    outcome.message = Some(message(&output));
                    outcome.stdout = Some(output);
                }
                finished.push(outcome);
            }
            (None, None) => {
                if let Some(text) = event.output {
                    append_bounded(&mut package.output, &text, MAX_TEST_OUTPUT);
                }
            }
            (None, Some(status)) => {
                let package = self.packages.remove(&package_name).unwrap_or_default();
                if status == ResultStatus::Failed {
                    unfinished(&package_name, package, finished);
                }
            }
        }
    }
}

/// A failed package's tests that never finished, and the package itself when none of
/// its tests failed.
fn unfinished(name: &str, package: Package, finished: &mut Vec<TestOutcome>) {
    let mut running: Vec<_> = package.running.into_iter().collect();
    running.sort();
    let errored = !running.is_empty();
    for (test, output) in running {
        let mut outcome = TestOutcome::new(Some(name.to_owned()), test, ResultStatus::Errored);
        outcome.message = Some(format!("did not finish\n{}", message(&output)));
        outcome.stdout = Some(output);
        finished.push(outcome);
    }
    if !package.failed_tests && !errored {
        let mut outcome =
            TestOutcome::new(Some(name.to_owned()), PACKAGE_RESULT, ResultStatus::Errored);
        outcome.message = Some(message(&package.output));
        outcome.stdout = Some(package.output);
        finished.push(outcome);
    }
}

/// A test's output less go test's framing lines.
fn message(output: &str) -> String {
    let mut message = String::new();
    for line in output.lines() {
        let trimmed = line.trim_start();
        let framing = ["=== ", "--- PASS", "--- FAIL", "--- SKIP"]
            .iter()
            .any(|prefix| trimmed.starts_with(prefix));
        if !framing && !trimmed.is_empty() {
            append_bounded(&mut message, trimmed, MAX_MESSAGE_BYTES);
            append_bounded(&mut message, "\n", MAX_MESSAGE_BYTES);
        }
    }
    message
}

/// `FAIL\t<package> [build failed]`: go (before 1.24) prints it as text, not as an
/// event, when a test package does not compile.
fn build_failure(line: &str) -> Option<&str> {
    line.strip_prefix("FAIL\t")?.strip_suffix(" [build failed]")
}

impl Parser for GoTest {
    fn line(&mut self, line: &str, finished: &mut Vec<TestOutcome>) {
        if let Some(package) = build_failure(line) {
            let mut outcome = TestOutcome::new(
                Some(package.to_owned()),
                PACKAGE_RESULT,
                ResultStatus::Errored,
            );
            outcome.message = Some("build failed".to_owned());
            finished.push(outcome);
            return;
        }
        if !line.contains("\"Action\"") {
            return;
        }
        if let Ok(event) = serde_json::from_str::<Event>(line) {
            self.event(event, finished);
        }
    }

    fn end(&mut self, finished: &mut Vec<TestOutcome>) {
        let mut packages: Vec<_> = self.packages.drain().collect();
        packages.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mut package) in packages {
            // Only the tests left unfinished: the package as a whole may have passed
            // up to where the output ended.
            package.failed_tests = true;
            unfinished(&name, package, finished);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{read_all, statuses};
    use std::path::Path;

    use super::*;

    fn read(text: &str) -> Vec<TestOutcome> {
        read_all(&mut GoTest::default(), text)
    }

    fn fixture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/run")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    fn count(outcomes: &[TestOutcome], status: ResultStatus) -> usize {
        outcomes.iter().filter(|t| t.status == status).count()
    }

    #[test]
    fn go_tests_own_events_give_its_counts() {
        // go 1.19's `go test -v` summary of the same packages: 10 tests (subtests
        // included) of which 3 failed (TestRemove, TestTotals, TestTotals/many), 1
        // skipped.
        let outcomes = read(&fixture("go-test.jsonl"));
        assert_eq!(outcomes.len(), 10);
        assert_eq!(count(&outcomes, ResultStatus::Failed), 3);
        assert_eq!(count(&outcomes, ResultStatus::Skipped), 1);
        assert_eq!(count(&outcomes, ResultStatus::Passed), 6);
        let remove = outcomes.iter().find(|t| t.name == "TestRemove").unwrap();
        assert_eq!(remove.suite.as_deref(), Some("example.com/shop/cart"));
        assert_eq!(
            remove.message.as_deref(),
            Some("removing item 3\ncart_test.go:12: expected 2 items, got 3\n")
        );
        let skipped = outcomes.iter().find(|t| t.name == "TestSlow").unwrap();
        assert_eq!(
            skipped.message.as_deref(),
            Some("cart_test.go:25: needs a database\n")
        );
    }

    #[test]
    fn a_panic_fails_its_test_and_a_build_failure_errors_its_package() {
        let outcomes = read(&fixture("go-test-crash.jsonl"));
        assert_eq!(
            statuses(&outcomes),
            [
                ("TestMain", ResultStatus::Errored),
                ("TestFine", ResultStatus::Passed),
                ("TestNilMap", ResultStatus::Failed),
            ]
        );
        assert!(outcomes[2]
            .message
            .as_deref()
            .unwrap()
            .starts_with("panic: assignment to entry in nil map"));
    }

    #[test]
    fn a_package_failing_outside_its_tests_is_an_errored_test_main() {
        let outcomes = read(concat!(
            r#"{"Action":"output","Package":"p","Output":"panic: in TestMain\n"}"#,
            "\n",
            r#"{"Action":"fail","Package":"p","Elapsed":0.1}"#,
        ));
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].name, "TestMain");
        assert_eq!(outcomes[0].status, ResultStatus::Errored);
        assert_eq!(outcomes[0].message.as_deref(), Some("panic: in TestMain\n"));
    }

    #[test]
    fn tests_running_when_the_output_ends_are_errored() {
        let outcomes = read(concat!(
            r#"{"Action":"run","Package":"p","Test":"TestHangs"}"#,
            "\n",
            r#"{"Action":"output","Package":"p","Test":"TestHangs","Output":"=== RUN   TestHangs\n"}"#,
        ));
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].status, ResultStatus::Errored);
    }

    #[test]
    fn output_kept_per_test_is_bounded() {
        let mut go = GoTest::default();
        let mut finished = Vec::new();
        let line = format!(
            r#"{{"Action":"output","Package":"p","Test":"T","Output":"{}\n"}}"#,
            "x".repeat(1000)
        );
        for _ in 0..1000 {
            go.line(&line, &mut finished);
        }
        go.line(
            r#"{"Action":"fail","Package":"p","Test":"T"}"#,
            &mut finished,
        );
        assert!(finished[0].stdout.as_ref().unwrap().len() <= MAX_TEST_OUTPUT);
    }
}
