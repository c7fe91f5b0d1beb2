//! Helpers shared by the import tests.

use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use verdict_runs::domain::limits::{
    MAX_ATTRIBUTES, MAX_ATTRIBUTE_KEY_BYTES, MAX_ATTRIBUTE_VALUE_BYTES, MAX_MESSAGE_BYTES,
    MAX_NAME_BYTES, MAX_OUTPUT_BYTES, MAX_SUITE_BYTES, MAX_TRACE_BYTES,
};
use verdict_runs::domain::{CappedText, NewResult};
use verdict_runs::import::{
    parse_report, ImportError, Location, ParsedReport, ReportFormat, ReportItem, ReportReader,
};

/// Every fixture, and its format.
pub const FIXTURES: [(&str, ReportFormat); 26] = [
    ("pytest.xml", ReportFormat::Junit),
    ("jest-junit.xml", ReportFormat::Junit),
    ("surefire.xml", ReportFormat::Junit),
    ("gotestsum.xml", ReportFormat::Junit),
    ("playwright.xml", ReportFormat::Junit),
    ("ctrf.json", ReportFormat::Ctrf),
    ("nunit2/mock-assembly-2.6.2.xml", ReportFormat::Nunit2),
    ("nunit2/NUnit-issue5674.xml", ReportFormat::Nunit2),
    ("nunit2/NUnit-issue1077.xml", ReportFormat::Nunit2),
    ("nunit2/TikaOnDotNet-TestResult.xml", ReportFormat::Nunit2),
    ("nunit2/pickles.xml", ReportFormat::Nunit2),
    ("nunit3/NUnit-issue56241-failure.xml", ReportFormat::Nunit3),
    ("nunit3/NUnit-issue56241-warning.xml", ReportFormat::Nunit3),
    ("nunit3/NUnit-issue48478.xml", ReportFormat::Nunit3),
    ("nunit3/issue-27906.xml", ReportFormat::Nunit3),
    ("nunit3/dotnet-nunit.xml", ReportFormat::Nunit3),
    ("xunit/xunit-simple.xml", ReportFormat::Xunit2),
    ("xunit/testcase4.xml", ReportFormat::Xunit2),
    ("xunit/testcase5.xml", ReportFormat::Xunit2),
    ("xunit/InMemory.Tests.Output.xml", ReportFormat::Xunit2),
    ("xunit/Microbenchmarks.Output.xml", ReportFormat::Xunit2),
    (
        "trx/mstest_2_tests_from_different_assemblies.trx",
        ReportFormat::Trx,
    ),
    (
        "trx/mstest_more_than_one_minute_test.trx",
        ReportFormat::Trx,
    ),
    ("trx/mstest_4_tests_2_classes.trx", ReportFormat::Trx),
    ("trx/dotnet-trx.trx", ReportFormat::Trx),
    ("trx/MSTest-net8.0-sample.trx", ReportFormat::Trx),
];

/// The fixtures of one format.
pub fn fixtures_of(format: ReportFormat) -> impl Iterator<Item = &'static str> {
    FIXTURES
        .iter()
        .filter(move |(_, of)| *of == format)
        .map(|(name, _)| *name)
}

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

/// Hands out its bytes a few at a time, as a slow network would; seekable, as the
/// files imports read from are.
pub struct Trickle<'a> {
    bytes: &'a [u8],
    at: usize,
    step: usize,
}

impl<'a> Trickle<'a> {
    pub fn new(bytes: &'a [u8], step: usize) -> Self {
        Self { bytes, at: 0, step }
    }
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let rest = &self.bytes[self.at..];
        let n = self.step.min(out.len()).min(rest.len());
        out[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

impl Seek for Trickle<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let SeekFrom::Start(at) = to else {
            return Err(io::Error::other("readers only seek back to the start"));
        };
        self.at = usize::try_from(at).map_or(self.bytes.len(), |at| at.min(self.bytes.len()));
        Ok(self.at as u64)
    }
}

/// Reads `input` as a report of `format`, whatever its content, as the import would
/// once it told the format.
pub fn parse_as(
    format: ReportFormat,
    input: impl Read + Seek,
) -> Result<ParsedReport, ImportError> {
    let mut reader = ReportReader::with_format(format, input)?;
    let mut results = Vec::new();
    let mut suites = Vec::new();
    for item in reader.by_ref() {
        match item? {
            ReportItem::Result(result) => results.push(result),
            ReportItem::Suite(suite) => suites.push(suite),
        }
    }
    Ok(ParsedReport {
        summary: reader.summary().clone(),
        warnings: reader.warnings().to_vec(),
        results,
        suites,
    })
}

/// A fixture read as the import reads it: its format told by its content.
pub fn parse_fixture(name: &str) -> ParsedReport {
    parse_report(Cursor::new(fixture(name))).unwrap_or_else(|err| panic!("{name}: {err}"))
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

/// The sum of a numeric attribute over every `<element …>` start tag of a report, read
/// as plain text so that the readers under test do not check themselves; 0 where it is
/// absent.
pub fn attribute_sum(xml: &str, element: &str, attribute: &str) -> u64 {
    xml.split(&format!("<{element}"))
        .skip(1)
        .filter(|rest| rest.starts_with([' ', '\t', '\r', '\n', '>']))
        .filter_map(|rest| rest.split('>').next())
        .filter_map(|tag| attribute_value(tag, attribute))
        .filter_map(|value| value.parse::<u64>().ok())
        .sum()
}

/// The value of `attribute` in the text of one tag, quoted either way.
fn attribute_value<'a>(tag: &'a str, attribute: &str) -> Option<&'a str> {
    ['"', '\''].into_iter().find_map(|quote| {
        let marker = format!("{attribute}={quote}");
        let start = tag
            .match_indices(&marker)
            .find(|(at, _)| *at == 0 || tag[..*at].ends_with(char::is_whitespace))?
            .0
            + marker.len();
        tag[start..].split(quote).next()
    })
}
