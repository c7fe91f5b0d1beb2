//! CTRF JSON (<https://ctrf.io>). The document is capped at [`MAX_CTRF_BYTES`] and its
//! tests are converted one at a time as serde reads them, so memory holds the results
//! and one raw test, never the whole raw document.
//!
//! Mapping:
//! * status: `passed`, `failed` and `skipped` as they are; `pending` and `other` (tests
//!   that did not run to a verdict: todo, disabled, not started) as skipped;
//! * suite: `suite` as a string, or as the newer hierarchy array joined with ` > `;
//! * attempts: `retryAttempts` entries before the final attempt become earlier results;
//!   attempts that `retries` or `flaky` imply but no entry describes become failed
//!   results without details, so the counts come out the same either way;
//! * properties: `filePath` (as `file`), `line`, `tags`, `type`, `browser`, `device`.

use std::fmt;
use std::io::{self, BufReader, Read};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::domain::limits::{MAX_ATTEMPT, MAX_CTRF_BYTES};
use crate::domain::{
    Attributes, CappedText, CappedTextBuilder, DurationMs, NewResult, ResultStatus, SuiteName,
    TestName, TextField,
};

use super::{
    attempt_results, cap_label, AttemptReport, DeclaredCounts, ImportError, Location, ParsedReport,
    ReportFormat, ReportSummary,
};

/// Parses a CTRF JSON report.
pub fn parse_ctrf(input: impl Read) -> Result<ParsedReport, ImportError> {
    let mut input = CappedReader {
        inner: BufReader::new(input),
        remaining: MAX_CTRF_BYTES,
        exceeded: false,
    };
    let mut results = Vec::new();
    let mut invalid = None;
    let parsed = {
        let mut deserializer = serde_json::Deserializer::from_reader(&mut input);
        let seed = DocumentSeed {
            results: &mut results,
            invalid: &mut invalid,
        };
        seed.deserialize(&mut deserializer)
            .and_then(|summary| deserializer.end().map(|()| summary))
    };
    match parsed {
        Ok(summary) => Ok(ParsedReport {
            summary,
            warnings: Vec::new(),
            results,
            suites: Vec::new(),
        }),
        Err(_) if input.exceeded => Err(ImportError::TooLarge {
            format: ReportFormat::Ctrf,
            limit: MAX_CTRF_BYTES,
        }),
        Err(err) => Err(invalid.unwrap_or_else(|| json_error(err))),
    }
}

fn json_error(err: serde_json::Error) -> ImportError {
    if err.is_io() {
        return ImportError::Read(io::Error::other(err.to_string()));
    }
    // serde_json says column 0 before the first character of a line.
    let at = Location::Position {
        line: err.line().max(1) as u64,
        column: err.column().max(1) as u64,
    };
    // serde_json ends its messages with the position, which `at` already carries.
    let message = err.to_string();
    let reason = match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_owned(),
        None => message,
    };
    ImportError::Malformed {
        format: ReportFormat::Ctrf,
        at,
        reason,
    }
}

fn invalid(path: String, reason: impl fmt::Display) -> ImportError {
    ImportError::Invalid {
        format: ReportFormat::Ctrf,
        at: Location::Path(path),
        reason: reason.to_string(),
    }
}

/// Reads at most `remaining` bytes and notes whether the input had more.
struct CappedReader<R> {
    inner: R,
    remaining: u64,
    exceeded: bool,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.exceeded = true;
            return Err(io::Error::other("the report is too large"));
        }
        let wanted = out
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut out[..wanted])?;
        self.remaining -= read as u64;
        Ok(read)
    }
}

/// Where converted results go while serde walks the document, and the first content
/// error, which serde can only carry as a string.
struct DocumentSeed<'a> {
    results: &'a mut Vec<NewResult>,
    invalid: &'a mut Option<ImportError>,
}

impl<'de> DeserializeSeed<'de> for DocumentSeed<'_> {
    type Value = ReportSummary;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed<'_> {
    type Value = ReportSummary;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CTRF document: an object with `results`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut summary = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "results" && summary.is_none() {
                summary = Some(map.next_value_seed(ResultsSeed {
                    results: &mut *self.results,
                    invalid: &mut *self.invalid,
                })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        summary.ok_or_else(|| de::Error::missing_field("results"))
    }
}

struct ResultsSeed<'a> {
    results: &'a mut Vec<NewResult>,
    invalid: &'a mut Option<ImportError>,
}

impl<'de> DeserializeSeed<'de> for ResultsSeed<'_> {
    type Value = ReportSummary;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ResultsSeed<'_> {
    type Value = ReportSummary;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CTRF `results`: an object with `tool`, `summary` and `tests`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut summary = ReportSummary::new(ReportFormat::Ctrf);
        let mut saw_tests = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "tool" => {
                    let tool = map.next_value::<Tool>()?;
                    let label = match tool.version {
                        Some(version) => format!("{} {version}", tool.name),
                        None => tool.name,
                    };
                    summary.tool = Some(cap_label(&label));
                }
                "summary" => {
                    let counts = map.next_value::<Summary>()?;
                    summary.declared = counts.declared();
                    summary.started_at = counts.start.and_then(epoch_millis);
                    summary.duration_ms = counts.duration_ms();
                }
                "tests" if !saw_tests => {
                    saw_tests = true;
                    map.next_value_seed(TestsSeed {
                        results: &mut *self.results,
                        invalid: &mut *self.invalid,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_tests {
            return Err(de::Error::missing_field("tests"));
        }
        Ok(summary)
    }
}

struct TestsSeed<'a> {
    results: &'a mut Vec<NewResult>,
    invalid: &'a mut Option<ImportError>,
}

impl<'de> DeserializeSeed<'de> for TestsSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for TestsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of CTRF tests")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while let Some(test) = seq.next_element::<Test>()? {
            if let Err(err) = test.into_results(index, self.results) {
                *self.invalid = Some(err);
                return Err(de::Error::custom("invalid test"));
            }
            index += 1;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Tool {
    name: String,
    version: Option<String>,
}

#[derive(Deserialize)]
struct Summary {
    tests: Option<u64>,
    passed: Option<u64>,
    failed: Option<u64>,
    skipped: Option<u64>,
    pending: Option<u64>,
    other: Option<u64>,
    flaky: Option<u64>,
    start: Option<f64>,
    stop: Option<f64>,
    duration: Option<f64>,
}

impl Summary {
    fn declared(&self) -> DeclaredCounts {
        let not_run = [self.skipped, self.pending, self.other];
        DeclaredCounts {
            tests: self.tests,
            passed: self.passed,
            failed: self.failed,
            errored: None,
            skipped: not_run.iter().any(Option::is_some).then(|| {
                not_run
                    .iter()
                    .flatten()
                    .fold(0u64, |sum, n| sum.saturating_add(*n))
            }),
            flaky: self.flaky,
        }
    }

    fn duration_ms(&self) -> Option<DurationMs> {
        match (self.duration, self.start, self.stop) {
            (Some(duration), _, _) => DurationMs::from_millis_f64(duration),
            (None, Some(start), Some(stop)) => DurationMs::from_millis_f64(stop - start),
            _ => None,
        }
    }
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Status {
    Passed,
    Failed,
    Skipped,
    Pending,
    Other,
}

impl Status {
    fn result_status(self) -> ResultStatus {
        match self {
            Status::Passed => ResultStatus::Passed,
            Status::Failed => ResultStatus::Failed,
            Status::Skipped | Status::Pending | Status::Other => ResultStatus::Skipped,
        }
    }
}

/// `suite` is a string in older CTRF versions and the suite hierarchy in newer ones.
#[derive(Deserialize)]
#[serde(untagged)]
enum SuitePath {
    Name(String),
    Hierarchy(Vec<String>),
}

/// Output is an array of lines in CTRF; a plain string is accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum Lines {
    Text(String),
    Lines(Vec<String>),
}

impl Lines {
    fn capped(self, field: TextField) -> Option<CappedText> {
        let mut text = CappedTextBuilder::new(field);
        match self {
            Lines::Text(line) => text.push_str(&line),
            Lines::Lines(lines) => {
                for (i, line) in lines.iter().enumerate() {
                    if i > 0 {
                        text.push_str("\n");
                    }
                    text.push_str(line);
                }
            }
        }
        Some(text.finish()).filter(|text| !text.is_blank())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Test {
    name: String,
    status: Status,
    duration: Option<f64>,
    start: Option<f64>,
    suite: Option<SuitePath>,
    message: Option<String>,
    trace: Option<String>,
    stdout: Option<Lines>,
    stderr: Option<Lines>,
    retries: Option<u64>,
    flaky: Option<bool>,
    #[serde(default)]
    retry_attempts: Vec<RetryAttempt>,
    file_path: Option<String>,
    line: Option<u64>,
    #[serde(default)]
    tags: Vec<String>,
    r#type: Option<String>,
    browser: Option<String>,
    device: Option<String>,
}

#[derive(Deserialize)]
struct RetryAttempt {
    attempt: u64,
    status: Status,
    duration: Option<f64>,
    message: Option<String>,
    trace: Option<String>,
    stdout: Option<Lines>,
    stderr: Option<Lines>,
}

impl From<RetryAttempt> for AttemptReport {
    fn from(entry: RetryAttempt) -> Self {
        AttemptReport {
            status: entry.status.result_status(),
            duration_ms: entry.duration.and_then(DurationMs::from_millis_f64),
            started_at: None,
            message: non_blank(entry.message, TextField::Message),
            trace: non_blank(entry.trace, TextField::Trace),
            stdout: entry
                .stdout
                .and_then(|lines| lines.capped(TextField::Stdout)),
            stderr: entry
                .stderr
                .and_then(|lines| lines.capped(TextField::Stderr)),
        }
    }
}

impl Test {
    /// Appends one result per attempt of this test, the final one last.
    fn into_results(self, index: usize, results: &mut Vec<NewResult>) -> Result<(), ImportError> {
        let path = |field: &str| format!("results.tests[{index}].{field}");
        let name = TestName::parse(self.name.as_str()).map_err(|err| invalid(path("name"), err))?;
        let suite = match self.suite {
            Some(SuitePath::Name(name)) => name,
            Some(SuitePath::Hierarchy(parts)) => parts.join(" > "),
            None => String::new(),
        };
        let suite = match suite.trim() {
            "" => None,
            _ => Some(SuiteName::parse(suite).map_err(|err| invalid(path("suite"), err))?),
        };
        let mut attributes = Attributes::default();
        let line = self.line.map(|line| line.to_string());
        let tags = (!self.tags.is_empty()).then(|| self.tags.join(", "));
        for (key, value) in [
            ("file", &self.file_path),
            ("line", &line),
            ("tags", &tags),
            ("type", &self.r#type),
            ("browser", &self.browser),
            ("device", &self.device),
        ] {
            if let Some(value) = value.as_deref().filter(|value| !value.trim().is_empty()) {
                attributes.insert_lenient(key, value);
            }
        }

        let status = self.status.result_status();
        let final_report = AttemptReport {
            status,
            duration_ms: self.duration.and_then(DurationMs::from_millis_f64),
            started_at: self.start.and_then(epoch_millis),
            message: non_blank(self.message, TextField::Message),
            trace: non_blank(self.trace, TextField::Trace),
            stdout: self
                .stdout
                .and_then(|lines| lines.capped(TextField::Stdout)),
            stderr: self
                .stderr
                .and_then(|lines| lines.capped(TextField::Stderr)),
        };
        let attempts = arrange_attempts(
            final_report,
            self.retry_attempts,
            self.retries.unwrap_or(0),
            self.flaky.unwrap_or(false),
        );
        results.extend(
            attempt_results(suite, name, attributes, attempts)
                .map_err(|err| invalid(path("retries"), err))?,
        );
        Ok(())
    }
}

/// Orders a test's attempts, the final one last, filling in attempts that `retries` or
/// `flaky` imply but no entry describes. At most [`MAX_ATTEMPT`] come out.
fn arrange_attempts(
    final_report: AttemptReport,
    entries: Vec<RetryAttempt>,
    retries: u64,
    flaky: bool,
) -> Vec<AttemptReport> {
    let cap = u64::from(MAX_ATTEMPT);
    let last_entry = entries.iter().max_by_key(|entry| entry.attempt);
    // The final attempt's number: stated by `retries`, else after the entries (or the
    // last entry itself, when it is the final attempt written twice).
    let mut final_number = if retries > 0 {
        retries.saturating_add(1)
    } else {
        match last_entry {
            Some(last) if last.status.result_status() == final_report.status => last.attempt,
            Some(last) => last.attempt.saturating_add(1),
            None => 1,
        }
    };
    let passed_after_failing =
        final_report.status == ResultStatus::Passed && (flaky || retries > 0);
    if passed_after_failing && final_number == 1 {
        final_number = 2;
    }
    let final_number = final_number.clamp(1, cap);

    let mut earlier: Vec<Option<AttemptReport>> = (1..final_number).map(|_| None).collect();
    for entry in entries {
        if (1..final_number).contains(&entry.attempt) {
            let slot = (entry.attempt - 1) as usize;
            earlier[slot] = Some(entry.into());
        }
    }
    earlier
        .into_iter()
        // An attempt the report implies but does not describe.
        .map(|report| report.unwrap_or_else(|| AttemptReport::bare(ResultStatus::Failed)))
        .chain(std::iter::once(final_report))
        .collect()
}

fn non_blank(value: Option<String>, field: TextField) -> Option<CappedText> {
    value
        .filter(|value| !value.trim().is_empty())
        .map(|value| field.cap(value))
}

/// A CTRF time: milliseconds since the Unix epoch.
fn epoch_millis(millis: f64) -> Option<OffsetDateTime> {
    if !millis.is_finite() {
        return None;
    }
    // Whole milliseconds; `as` saturates and the range check below catches it.
    let nanos = i128::from(millis.round() as i64) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}
