//! Imported reports (JUnit XML, CTRF JSON) turned into results. Parsing is synchronous
//! and streaming, meant for the blocking pool: the JUnit reader holds one piece of
//! markup and one test case at a time whatever the file's size, and every field is
//! capped by the same limits as the API (see [`crate::domain::limits`]).

mod ctrf;
mod error;
mod junit;
mod xml_source;

use std::collections::HashMap;
use std::fmt;
use std::io::Read;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::domain::limits::{MAX_ATTEMPT, MAX_NAME_BYTES};
use crate::domain::{
    Attempt, Attributes, CappedText, CappedTextBuilder, Counts, DurationMs, InvalidValue,
    NewResult, ResultStatus, SuiteName, TestName, TestOutcome,
};

pub use ctrf::parse_ctrf;
pub use error::{ImportError, Location};
pub use junit::{parse_junit, JunitReader};

/// The report formats Verdict imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Junit,
    Ctrf,
}

impl fmt::Display for ReportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReportFormat::Junit => "JUnit XML",
            ReportFormat::Ctrf => "CTRF JSON",
        })
    }
}

/// Parses a whole report of the given format.
pub fn parse_report(format: ReportFormat, input: impl Read) -> Result<ParsedReport, ImportError> {
    match format {
        ReportFormat::Junit => parse_junit(input),
        ReportFormat::Ctrf => parse_ctrf(input),
    }
}

/// The counts a report states about itself, where it does. They are kept to compare
/// with what was actually found, never trusted over it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeclaredCounts {
    pub tests: Option<u64>,
    pub passed: Option<u64>,
    pub failed: Option<u64>,
    pub errored: Option<u64>,
    pub skipped: Option<u64>,
    pub flaky: Option<u64>,
}

impl DeclaredCounts {
    /// Adds the counts of a sibling suite; a count stays unknown only if neither has it.
    fn add(&mut self, other: &DeclaredCounts) {
        let sum = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
        self.tests = sum(self.tests, other.tests);
        self.passed = sum(self.passed, other.passed);
        self.failed = sum(self.failed, other.failed);
        self.errored = sum(self.errored, other.errored);
        self.skipped = sum(self.skipped, other.skipped);
        self.flaky = sum(self.flaky, other.flaky);
    }
}

/// What a report says about the run as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSummary {
    pub format: ReportFormat,
    /// The report's own name (`<testsuites name>`), a default for the run's name.
    pub name: Option<String>,
    /// The tool that wrote the report, where it says (CTRF `results.tool`).
    pub tool: Option<String>,
    pub declared: DeclaredCounts,
    pub started_at: Option<OffsetDateTime>,
    pub duration_ms: Option<DurationMs>,
}

impl ReportSummary {
    fn new(format: ReportFormat) -> Self {
        Self {
            format,
            name: None,
            tool: None,
            declared: DeclaredCounts::default(),
            started_at: None,
            duration_ms: None,
        }
    }
}

/// Output and properties a JUnit `<testsuite>` carries outside its test cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSuite {
    pub name: Option<SuiteName>,
    pub properties: Attributes,
    pub stdout: Option<CappedText>,
    pub stderr: Option<CappedText>,
}

/// One thing found in a streamed report. A test retried inside the report yields one
/// result per attempt, in attempt order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportItem {
    Result(NewResult),
    Suite(ParsedSuite),
}

/// A whole report in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedReport {
    pub summary: ReportSummary,
    /// One per attempt of each test, in report order.
    pub results: Vec<NewResult>,
    pub suites: Vec<ParsedSuite>,
}

impl ParsedReport {
    /// The counters the run gets from these results, by the same rules as live results.
    pub fn counts(&self) -> Counts {
        let mut outcomes = HashMap::new();
        let mut counts = Counts::default();
        for result in &self.results {
            let key = result.test_key();
            let change =
                TestOutcome::record(outcomes.get(&key).copied(), result.attempt, result.status);
            outcomes.insert(key, change.outcome);
            counts.apply(change.delta);
        }
        counts
    }
}

/// What a report says about one attempt of a test.
struct AttemptReport {
    status: ResultStatus,
    duration_ms: Option<DurationMs>,
    started_at: Option<OffsetDateTime>,
    message: Option<CappedText>,
    trace: Option<CappedText>,
    stdout: Option<CappedText>,
    stderr: Option<CappedText>,
}

impl AttemptReport {
    /// An attempt with nothing but its status.
    fn bare(status: ResultStatus) -> Self {
        AttemptReport {
            status,
            duration_ms: None,
            started_at: None,
            message: None,
            trace: None,
            stdout: None,
            stderr: None,
        }
    }
}

/// One result per attempt of a test, numbered from 1 in the order given. Refused when
/// there are more attempts than [`MAX_ATTEMPT`].
fn attempt_results(
    suite: Option<SuiteName>,
    name: TestName,
    attributes: Attributes,
    attempts: Vec<AttemptReport>,
) -> Result<Vec<NewResult>, InvalidValue> {
    if attempts.len() > MAX_ATTEMPT as usize {
        return Err(InvalidValue::new(format!(
            "a test may have at most {MAX_ATTEMPT} attempts, this one has {}",
            attempts.len()
        )));
    }
    (1..)
        .zip(attempts)
        .map(|(number, report)| {
            Ok(NewResult {
                id: None,
                suite: suite.clone(),
                name: name.clone(),
                status: report.status,
                attempt: Attempt::new(number)?,
                duration_ms: report.duration_ms,
                started_at: report.started_at,
                message: report.message,
                trace: report.trace,
                stdout: report.stdout,
                stderr: report.stderr,
                attributes: attributes.clone(),
            })
        })
        .collect()
}

/// A short label from a report (a report or tool name), cut to a name's length.
fn cap_label(text: &str) -> String {
    let mut label = CappedTextBuilder::with_limit(MAX_NAME_BYTES);
    label.push_str(text.trim());
    label.finish_string()
}

/// Seconds as JUnit writes them: `0.25`, `12`, and from some old Surefire versions
/// `1,234.5` (thousands separator) or `0,25` (decimal comma).
fn parse_seconds(text: &str) -> Option<DurationMs> {
    let text = text.trim();
    let normalised = if text.contains('.') {
        text.replace(',', "")
    } else {
        text.replace(',', ".")
    };
    normalised
        .parse::<f64>()
        .ok()
        .and_then(DurationMs::from_seconds)
}

/// A count attribute such as `tests="12"`.
fn parse_count(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// A report timestamp: RFC 3339, or the zoneless ISO 8601 that Surefire and others
/// write, taken as UTC.
fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(at.to_offset(UtcOffset::UTC));
    }
    let zoneless = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(text, zoneless)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_in_every_spelling_seen_in_the_wild() {
        let ms = |text| parse_seconds(text).map(DurationMs::get);
        assert_eq!(ms("0.25"), Some(250));
        assert_eq!(ms(" 3 "), Some(3000));
        assert_eq!(ms("1,234.5"), Some(1_234_500));
        assert_eq!(ms("0,25"), Some(250));
        assert_eq!(ms("1e-3"), Some(1));
        assert_eq!(ms(""), None);
        assert_eq!(ms("-1"), None);
        assert_eq!(ms("NaN"), None);
    }

    #[test]
    fn timestamps_with_and_without_a_zone() {
        let unix = |text| parse_timestamp(text).map(OffsetDateTime::unix_timestamp);
        assert_eq!(unix("2026-03-01T10:00:00Z"), Some(1_772_359_200));
        assert_eq!(unix("2026-03-01T12:00:00+02:00"), Some(1_772_359_200));
        assert_eq!(unix("2026-03-01T10:00:00"), Some(1_772_359_200));
        assert_eq!(unix("2026-03-01T10:00:00.123456"), Some(1_772_359_200));
        assert_eq!(unix("yesterday"), None);
    }

    #[test]
    fn declared_counts_add_up_across_suites() {
        let mut total = DeclaredCounts::default();
        total.add(&DeclaredCounts {
            tests: Some(2),
            failed: Some(1),
            ..Default::default()
        });
        total.add(&DeclaredCounts {
            tests: Some(3),
            skipped: Some(1),
            ..Default::default()
        });
        assert_eq!(
            total,
            DeclaredCounts {
                tests: Some(5),
                failed: Some(1),
                skipped: Some(1),
                ..Default::default()
            }
        );
    }
}
