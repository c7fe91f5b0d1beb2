//! pytest's `--report-log` JSON lines (the pytest-reportlog plugin).
//!
//! A test's setup, call and teardown reports make one result, sent with its teardown:
//! `passed`/`failed` as its call went, `skipped` when skipped (xfail included), `errored`
//! when its setup failed. As pytest's summary counts it, a test whose teardown failed
//! adds an errored result of its own, named `<test> (teardown)`, and a file that failed
//! to collect is an errored `(collection)` result. The node id `file.py::Class::test`
//! splits into suite `file.py::Class` and name `test`; the crash message is the message
//! and the traceback's lines the trace.

use std::collections::HashMap;

use serde_json::Value;
use verdict_contracts::runs::limits::MAX_TRACE_BYTES;
use verdict_contracts::runs::ResultStatus;

use super::{append_bounded, seconds_to_ms, Parser, TestOutcome};

/// Tests between setup and teardown remembered at once (one, unless run in parallel).
const MAX_TRACKED: usize = 10_000;

/// The report-log reader's state: the tests whose teardown has not come yet.
#[derive(Default)]
pub struct PytestLog {
    running: HashMap<String, TestOutcome>,
}

/// Suite and name of a node id: split at its last `::` outside parameters.
fn split_node_id(node_id: &str) -> (Option<String>, String) {
    let plain_end = node_id.find('[').unwrap_or(node_id.len());
    match node_id[..plain_end].rfind("::") {
        Some(at) => (Some(node_id[..at].to_owned()), node_id[at + 2..].to_owned()),
        None => (None, node_id.to_owned()),
    }
}

/// The message of a report's `longrepr`: the crash message of a failure, the reason of
/// a skip (`[path, line, "Skipped: reason"]`), or the text it is.
fn message(report: &Value) -> Option<String> {
    if let Some(reason) = report.get("wasxfail").and_then(Value::as_str) {
        return Some(format!("xfail: {reason}"));
    }
    match report.get("longrepr")? {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => parts
            .get(2)
            .and_then(Value::as_str)
            .map(|text| text.strip_prefix("Skipped: ").unwrap_or(text).to_owned()),
        Value::Object(longrepr) => longrepr
            .get("reprcrash")?
            .get("message")?
            .as_str()
            .map(str::to_owned),
        _ => None,
    }
}

/// The lines of the traceback entries of a failure.
fn trace(report: &Value) -> Option<String> {
    let entries = report
        .pointer("/longrepr/reprtraceback/reprentries")?
        .as_array()?;
    let mut trace = String::new();
    for entry in entries {
        let lines = entry.pointer("/data/lines").and_then(Value::as_array);
        for line in lines.into_iter().flatten().filter_map(Value::as_str) {
            append_bounded(&mut trace, line, MAX_TRACE_BYTES);
            append_bounded(&mut trace, "\n", MAX_TRACE_BYTES);
        }
    }
    Some(trace)
}

impl PytestLog {
    fn test_report(&mut self, report: &Value, finished: &mut Vec<TestOutcome>) {
        let (Some(node_id), Some(when), Some(outcome)) = (
            report.get("nodeid").and_then(Value::as_str),
            report.get("when").and_then(Value::as_str),
            report.get("outcome").and_then(Value::as_str),
        ) else {
            return;
        };
        if !self.running.contains_key(node_id) && self.running.len() >= MAX_TRACKED {
            return;
        }
        let test = self.running.entry(node_id.to_owned()).or_insert_with(|| {
            let (suite, name) = split_node_id(node_id);
            TestOutcome::new(suite, name, ResultStatus::Passed)
        });
        if let Some(ms) = report
            .get("duration")
            .and_then(Value::as_f64)
            .and_then(seconds_to_ms)
        {
            test.duration_ms = Some(test.duration_ms.unwrap_or(0).saturating_add(ms));
        }
        let status = match (when, outcome) {
            (_, "passed") => None,
            ("setup", "failed") => Some(ResultStatus::Errored),
            ("call", "failed") => Some(ResultStatus::Failed),
            (_, "skipped") => Some(ResultStatus::Skipped),
            ("teardown", "failed") => {
                let mut teardown = TestOutcome::new(
                    test.suite.clone(),
                    format!("{} (teardown)", test.name),
                    ResultStatus::Errored,
                );
                teardown.message = message(report);
                teardown.trace = trace(report);
                finished.push(teardown);
                None
            }
            _ => None,
        };
        if let Some(status) = status {
            test.status = status;
            test.message = message(report);
            test.trace = trace(report);
        } else if outcome == "passed" && report.get("wasxfail").is_some() {
            test.message = message(report);
        }
        if when == "teardown" {
            finished.extend(self.running.remove(node_id));
        }
    }
}

impl Parser for PytestLog {
    fn line(&mut self, line: &str, finished: &mut Vec<TestOutcome>) {
        if !line.contains("\"$report_type\"") {
            return;
        }
        let Ok(report) = serde_json::from_str::<Value>(line) else {
            return;
        };
        match report.get("$report_type").and_then(Value::as_str) {
            Some("TestReport") => self.test_report(&report, finished),
            Some("CollectReport")
                if report.get("outcome").and_then(Value::as_str) == Some("failed") =>
            {
                let node_id = report.get("nodeid").and_then(Value::as_str).unwrap_or("");
                let mut outcome = TestOutcome::new(
                    Some(node_id.to_owned()),
                    "(collection)",
                    ResultStatus::Errored,
                );
                outcome.message = message(&report);
                finished.push(outcome);
            }
            _ => {}
        }
    }

    fn end(&mut self, finished: &mut Vec<TestOutcome>) {
        let mut running: Vec<_> = self.running.drain().collect();
        running.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, mut test) in running {
            test.status = ResultStatus::Errored;
            test.message = Some("did not finish: the report log ended".to_owned());
            finished.push(test);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::read_all;
    use std::path::Path;

    use super::*;

    fn read(text: &str) -> Vec<TestOutcome> {
        read_all(&mut PytestLog::default(), text)
    }

    #[test]
    fn pytests_report_log_gives_its_summary() {
        // Written by pytest 9.0.3 with pytest-reportlog 1.0.0 running test_shop.py:
        // "1 failed, 4 passed, 1 skipped, 1 xfailed, 2 errors".
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/run/pytest-report-log.jsonl");
        let outcomes = read(&std::fs::read_to_string(path).unwrap());
        let count = |status| outcomes.iter().filter(|t| t.status == status).count();
        assert_eq!(count(ResultStatus::Passed), 4);
        assert_eq!(count(ResultStatus::Failed), 1);
        assert_eq!(count(ResultStatus::Skipped), 2, "skipped and xfailed");
        assert_eq!(count(ResultStatus::Errored), 2);
        let failed = outcomes.iter().find(|t| t.name == "test_fails").unwrap();
        assert_eq!(failed.suite.as_deref(), Some("test_shop.py"));
        assert_eq!(
            failed.message.as_deref(),
            Some("AssertionError: one is not two\nassert 1 == 2")
        );
        assert!(failed
            .trace
            .as_deref()
            .unwrap()
            .contains(">       assert 1 == 2"));
        let skipped = outcomes.iter().find(|t| t.name == "test_skipped").unwrap();
        assert_eq!(skipped.message.as_deref(), Some("not on this platform"));
        let xfail = outcomes.iter().find(|t| t.name == "test_xfail").unwrap();
        assert_eq!(xfail.message.as_deref(), Some("xfail: known bug"));
        assert!(outcomes
            .iter()
            .any(|t| t.name == "test_teardown_error (teardown)"));
    }

    #[test]
    fn node_ids_split_into_suite_and_name_outside_parameters() {
        assert_eq!(
            split_node_id("tests/test_a.py::TestCart::test_add[a::b]"),
            (
                Some("tests/test_a.py::TestCart".to_owned()),
                "test_add[a::b]".to_owned()
            )
        );
        assert_eq!(split_node_id("test_a.py"), (None, "test_a.py".to_owned()));
    }

    #[test]
    fn a_test_whose_teardown_never_came_is_errored() {
        let outcomes = read(
            r#"{"$report_type": "TestReport", "nodeid": "t.py::hangs", "when": "setup", "outcome": "passed"}"#,
        );
        assert_eq!(outcomes[0].status, ResultStatus::Errored);
    }
}
