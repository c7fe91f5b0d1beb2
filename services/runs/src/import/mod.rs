//! Imported reports turned into results: JUnit XML (every dialect), NUnit 2 and 3 XML,
//! xUnit.net v2 XML, Visual Studio TRX and CTRF JSON, the format told by the content
//! ([`detect_format`]). Parsing is synchronous and streaming, meant for the blocking
//! pool: the XML readers hold one piece of markup and one test at a time whatever the
//! file's size, and every field is capped by the same limits as the API (see
//! [`crate::domain::limits`]).

mod ctrf;
mod detect;
mod error;
mod junit;
mod nunit;
mod trx;
mod xml_reader;
mod xml_source;
mod xunit;

use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Seek, SeekFrom};

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::domain::limits::{MAX_ATTEMPT, MAX_NAME_BYTES};
use crate::domain::{
    Attempt, Attributes, CappedText, CappedTextBuilder, Counts, DurationMs, InvalidValue,
    NewResult, ResultStatus, SuiteName, TestName, TestOutcome, TextField,
};

pub use ctrf::parse_ctrf;
pub use detect::{detect_format, SNIFF_BYTES};
pub use error::{ImportError, Location};
pub use junit::{parse_junit, JunitReader, MAX_UNLISTED_RESULTS};

use nunit::{Nunit, NunitVersion};
use trx::Trx;
use xml_reader::XmlReader;
use xunit::Xunit;

/// The report formats Verdict imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Junit,
    Nunit2,
    Nunit3,
    Xunit2,
    Trx,
    Ctrf,
}

impl ReportFormat {
    /// Every format read from XML, by the root elements that make a document one.
    const XML: [(ReportFormat, &'static [&'static str]); 5] = [
        (ReportFormat::Junit, &["testsuites", "testsuite"]),
        (ReportFormat::Nunit2, &["test-results"]),
        (ReportFormat::Nunit3, &["test-run"]),
        (ReportFormat::Xunit2, &["assemblies"]),
        (ReportFormat::Trx, &["TestRun"]),
    ];

    /// The root elements of a document of this format (none for JSON).
    pub fn root_elements(self) -> &'static [&'static str] {
        Self::XML
            .iter()
            .find(|(format, _)| *format == self)
            .map_or(&[], |(_, roots)| roots)
    }

    /// The XML format whose documents have the root element `root`.
    pub fn of_root_element(root: &str) -> Option<ReportFormat> {
        Self::XML
            .iter()
            .find(|(_, roots)| roots.contains(&root))
            .map(|(format, _)| *format)
    }
}

impl fmt::Display for ReportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReportFormat::Junit => "JUnit XML",
            ReportFormat::Nunit2 => "NUnit 2 XML",
            ReportFormat::Nunit3 => "NUnit 3 XML",
            ReportFormat::Xunit2 => "xUnit.net v2 XML",
            ReportFormat::Trx => "TRX",
            ReportFormat::Ctrf => "CTRF JSON",
        })
    }
}

/// Parses a whole report, its format told by its content.
pub fn parse_report(input: impl Read + Seek) -> Result<ParsedReport, ImportError> {
    let mut reader = ReportReader::open(input)?;
    let (results, suites) = collect_items(&mut reader)?;
    Ok(ParsedReport {
        summary: reader.summary().clone(),
        warnings: reader.warnings().to_vec(),
        results,
        suites,
    })
}

/// Yields the results of a report of any format as they are read (a CTRF document is
/// read whole when opened; it is capped). After an error it yields nothing more; the
/// summary and the warnings are complete once it is done.
pub struct ReportReader<R> {
    inner: AnyReader<R>,
}

enum AnyReader<R> {
    Junit(JunitReader<R>),
    Nunit(XmlReader<R, Nunit>),
    Xunit(XmlReader<R, Xunit>),
    Trx(XmlReader<R, Trx>),
    Ctrf(Box<CtrfItems>),
}

struct CtrfItems {
    summary: ReportSummary,
    warnings: Warnings,
    results: std::vec::IntoIter<NewResult>,
}

impl<R: Read + Seek> ReportReader<R> {
    /// Reads a report whose format [`detect_format`] tells.
    pub fn open(mut input: R) -> Result<Self, ImportError> {
        let format = detect_format(&mut input)?;
        Self::with_format(format, input)
    }

    /// Reads `input` as a report of `format`, whatever it holds. A TRX is read twice:
    /// once for the class of each test (its `<TestDefinitions>` follow its results),
    /// then for the results.
    pub fn with_format(format: ReportFormat, mut input: R) -> Result<Self, ImportError> {
        let inner = match format {
            ReportFormat::Junit => AnyReader::Junit(JunitReader::new(input)),
            ReportFormat::Nunit2 => AnyReader::Nunit(XmlReader::with_dialect(
                input,
                Nunit::new(NunitVersion::Two),
            )),
            ReportFormat::Nunit3 => AnyReader::Nunit(XmlReader::with_dialect(
                input,
                Nunit::new(NunitVersion::Three),
            )),
            ReportFormat::Xunit2 => {
                AnyReader::Xunit(XmlReader::with_dialect(input, Xunit::default()))
            }
            ReportFormat::Trx => {
                let classes = trx::read_classes(&mut input)?;
                input.seek(SeekFrom::Start(0)).map_err(ImportError::Read)?;
                AnyReader::Trx(XmlReader::with_dialect(input, Trx::new(classes)))
            }
            ReportFormat::Ctrf => {
                let report = parse_ctrf(input)?;
                AnyReader::Ctrf(Box::new(CtrfItems {
                    summary: report.summary,
                    warnings: Warnings::default(),
                    results: report.results.into_iter(),
                }))
            }
        };
        Ok(Self { inner })
    }
}

impl<R: Read> ReportReader<R> {
    /// What the report says about itself; complete once the iterator has finished.
    pub fn summary(&self) -> &ReportSummary {
        match &self.inner {
            AnyReader::Junit(reader) => reader.summary(),
            AnyReader::Nunit(reader) => reader.summary(),
            AnyReader::Xunit(reader) => reader.summary(),
            AnyReader::Trx(reader) => reader.summary(),
            AnyReader::Ctrf(items) => &items.summary,
        }
    }

    /// What was noticed but not refused; complete once the iterator has finished.
    pub fn warnings(&self) -> &Warnings {
        match &self.inner {
            AnyReader::Junit(reader) => reader.warnings(),
            AnyReader::Nunit(reader) => reader.warnings(),
            AnyReader::Xunit(reader) => reader.warnings(),
            AnyReader::Trx(reader) => reader.warnings(),
            AnyReader::Ctrf(items) => &items.warnings,
        }
    }
}

impl<R: Read> Iterator for ReportReader<R> {
    type Item = Result<ReportItem, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            AnyReader::Junit(reader) => reader.next(),
            AnyReader::Nunit(reader) => reader.next(),
            AnyReader::Xunit(reader) => reader.next(),
            AnyReader::Trx(reader) => reader.next(),
            AnyReader::Ctrf(items) => items
                .results
                .next()
                .map(|result| Ok(ReportItem::Result(result))),
        }
    }
}

/// The most warnings an import keeps; beyond, they are only counted.
pub const MAX_WARNINGS: usize = 100;
/// The longest warning kept, in bytes.
pub const MAX_WARNING_BYTES: usize = 1024;

/// What a reader noticed in a report without refusing it (a test case without a name,
/// counts without test cases), shown with the import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Warnings {
    kept: Vec<String>,
    more: u64,
}

impl Warnings {
    /// Notes something found at `at`.
    fn push(&mut self, at: &Location, text: &str) {
        if self.kept.len() >= MAX_WARNINGS {
            self.more += 1;
            return;
        }
        let mut warning = CappedTextBuilder::with_limit(MAX_WARNING_BYTES);
        warning.push_str(&format!("{at}: {text}"));
        self.kept.push(warning.finish_string());
    }

    /// The warnings, the last saying how many more there were beyond the limit.
    pub fn to_vec(&self) -> Vec<String> {
        let mut list = self.kept.clone();
        if self.more > 0 {
            list.push(format!("… and {} more warnings", self.more));
        }
        list
    }
}

/// Every item of a report, the first error ending it.
fn collect_items(
    items: &mut impl Iterator<Item = Result<ReportItem, ImportError>>,
) -> Result<(Vec<NewResult>, Vec<ParsedSuite>), ImportError> {
    let mut results = Vec::new();
    let mut suites = Vec::new();
    for item in items {
        match item? {
            ReportItem::Result(result) => results.push(result),
            ReportItem::Suite(suite) => suites.push(suite),
        }
    }
    Ok((results, suites))
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
        self.tests = sum(self.tests, other.tests);
        self.passed = sum(self.passed, other.passed);
        self.failed = sum(self.failed, other.failed);
        self.errored = sum(self.errored, other.errored);
        self.skipped = sum(self.skipped, other.skipped);
        self.flaky = sum(self.flaky, other.flaky);
    }
}

/// The sum of two counts a report may state, unknown only if neither is stated.
fn sum(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    }
}

/// What a report says about the run as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSummary {
    pub format: ReportFormat,
    /// The report's own name (`<testsuites name>`, the NUnit run or assembly, the TRX
    /// run), a default for the run's name.
    pub name: Option<String>,
    /// The tool that wrote the report, where it says (CTRF `results.tool`, the NUnit or
    /// xUnit.net version).
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
    /// What was noticed but not refused, at most [`MAX_WARNINGS`] and a last one
    /// counting the rest.
    pub warnings: Vec<String>,
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

/// Tells apart consecutive results a report names alike: NUnit and xUnit.net name each
/// case of a parameterized test after its arguments, and arguments that print the same
/// (an object without its own `ToString`) give one name to several cases. Each such
/// case is its own test, so the second is named `<name> #2`, the third `<name> #3`.
#[derive(Default)]
struct RepeatedNames {
    last: Option<(Option<SuiteName>, TestName)>,
    repeats: u32,
}

impl RepeatedNames {
    fn distinct(&mut self, suite: &Option<SuiteName>, name: TestName) -> TestName {
        match &self.last {
            Some((last_suite, last_name)) if last_suite == suite && *last_name == name => {
                self.repeats += 1;
                // A name at the length limit keeps its name, and counts once.
                TestName::parse(format!("{} #{}", name.as_str(), self.repeats + 1)).unwrap_or(name)
            }
            _ => {
                self.repeats = 0;
                self.last = Some((suite.clone(), name.clone()));
                name
            }
        }
    }
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
/// write, taken as UTC; the date and the time may be apart by a space, as NUnit 3
/// writes them (`2017-05-17 13:50:19Z`).
fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    let with_t;
    let text = if text.as_bytes().get(10) == Some(&b' ') {
        with_t = format!("{}T{}", &text[..10], &text[11..]);
        with_t.as_str()
    } else {
        text
    };
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

/// A .NET `TimeSpan` as TRX writes durations: `[d.]hh:mm:ss[.fffffff]`.
fn parse_timespan(text: &str) -> Option<DurationMs> {
    let mut parts = text.trim().split(':');
    let (hours, minutes, seconds) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (days, hours) = match hours.split_once('.') {
        Some((days, hours)) => (days.parse::<u32>().ok()?, hours),
        None => (0, hours),
    };
    let hours: u32 = hours.parse().ok()?;
    let minutes: u32 = minutes.parse().ok()?;
    let seconds: f64 = seconds.parse().ok().filter(|s: &f64| s.is_finite())?;
    let whole = (f64::from(days) * 24.0 + f64::from(hours)) * 3600.0 + f64::from(minutes) * 60.0;
    DurationMs::from_seconds(whole + seconds)
}

/// Text without the blank lines and indentation report writers pad it with; none if
/// it is blank.
fn trimmed(text: CappedText) -> Option<CappedText> {
    Some(text.trimmed()).filter(|text| !text.as_str().is_empty())
}

/// The first non-blank line, trimmed, as a message.
fn first_line(text: &CappedText) -> Option<CappedText> {
    text.as_str()
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(|line| TextField::Message.cap(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_root_element_names_one_format_and_that_format_reads_it() {
        let formats = [
            ReportFormat::Junit,
            ReportFormat::Nunit2,
            ReportFormat::Nunit3,
            ReportFormat::Xunit2,
            ReportFormat::Trx,
        ];
        for format in formats {
            assert!(!format.root_elements().is_empty(), "{format}");
            for root in format.root_elements() {
                assert_eq!(
                    ReportFormat::of_root_element(root),
                    Some(format),
                    "<{root}>"
                );
            }
        }
        assert!(ReportFormat::Ctrf.root_elements().is_empty());
        assert_eq!(ReportFormat::of_root_element("html"), None);
    }

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
        assert_eq!(unix("2017-05-17 13:50:19Z"), Some(1_495_029_019));
        assert_eq!(unix("yesterday"), None);
    }

    #[test]
    fn timespans_as_dotnet_writes_them() {
        let ms = |text| parse_timespan(text).map(DurationMs::get);
        assert_eq!(ms("00:00:00.0036206"), Some(4));
        assert_eq!(ms("00:00:01.2340000"), Some(1234));
        assert_eq!(ms("01:02:03"), Some(3_723_000));
        assert_eq!(ms("1.00:00:00.5"), Some(86_400_500));
        assert_eq!(ms("00:00"), None);
        assert_eq!(ms("-00:00:01"), None);
        assert_eq!(ms("00:00:NaN"), None);
        assert_eq!(ms(""), None);
    }

    #[test]
    fn warnings_are_capped_in_number_and_length() {
        let mut warnings = Warnings::default();
        let at = Location::Position { line: 1, column: 2 };
        warnings.push(&at, &"w".repeat(5000));
        for _ in 0..MAX_WARNINGS + 4 {
            warnings.push(&at, "again");
        }
        let list = warnings.to_vec();
        assert_eq!(list.len(), MAX_WARNINGS + 1);
        assert!(list[0].starts_with("line 1, column 2: www") && list[0].len() <= MAX_WARNING_BYTES);
        assert_eq!(list[MAX_WARNINGS], "… and 5 more warnings");
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
