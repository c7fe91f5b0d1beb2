//! NUnit 2 (`<test-results>`, NUnit 2.2 to 2.6 and tools that write its format) and
//! NUnit 3 (`<test-run>`) XML, streamed on the shared [`XmlReader`] loop: each finished
//! `<test-case>` becomes a result at once.
//!
//! Mapping:
//! * status, NUnit 3 (`result` and `label`): `Passed` and `Warning` passed (a warning's
//!   reason is its message); `Failed` failed, or errored with the label `Error`,
//!   `Invalid` or `Cancelled`; `Skipped` (labels `Ignored`, `Explicit`, …) and
//!   `Inconclusive` skipped;
//! * status, NUnit 2 (`result`): `Success` passed; `Failure` failed; `Error`,
//!   `Cancelled` and `NotRunnable` (a test that cannot run, counted `invalid`) errored;
//!   `Ignored`, `Skipped` and `Inconclusive` skipped; without `result` (before 2.5),
//!   `executed="False"` skipped, `success="False"` failed, else passed;
//! * an unknown `result` is read as skipped, with a warning; a case with a `<failure>`
//!   and no `result` failed whatever its `success` says;
//! * cases named alike one after the other (parameterized cases whose arguments print
//!   the same) are told apart as `<name> #2`, `<name> #3`;
//! * suite: NUnit 3, the `fullname` of the innermost `TestFixture` (so the instances of
//!   a parameterized fixture stay apart), else the case's `classname`; NUnit 2, the
//!   case's qualified name up to its last `.` outside parentheses and brackets, else
//!   the innermost `<test-suite name>`; name: the rest (NUnit 3: `name`);
//! * message: `<failure><message>`, else `<reason><message>` (why a test was ignored,
//!   skipped or inconclusive, or a warning); trace: `<failure><stack-trace>`; stdout:
//!   `<output>`; duration: `duration` (NUnit 2: `time`) in seconds;
//! * properties: `<property>` (but NUnit's own, named `_…`), categories as `category`;
//! * a suite that failed without listing a test case (a fixture that could not be
//!   built), or failed in its one-time teardown, is named in a warning: NUnit's own
//!   totals count test cases only, and so does the run;
//! * report summary: the root's counts (NUnit 3: `total`, `passed`, `failed`,
//!   `skipped` + `inconclusive`; NUnit 2: `total` + `not-run`, `failures`, `errors` +
//!   `invalid`, `not-run` - `invalid` + `inconclusive`), start and duration, the run's
//!   or first assembly's name, and the NUnit version.

use std::io::Read;

use crate::domain::limits::MAX_ATTRIBUTE_VALUE_BYTES;
use crate::domain::{
    Attributes, CappedText, CappedTextBuilder, DurationMs, ResultStatus, SuiteName, TestName,
    TextField,
};

use super::xml_reader::{Collected, Dialect, Tag, TagAttributes};
use super::{
    cap_label, parse_count, parse_seconds, parse_timestamp, sum, trimmed, AttemptReport,
    DeclaredCounts, ImportError, Location, RepeatedNames, ReportFormat,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NunitVersion {
    Two,
    Three,
}

/// What NUnit's elements mean.
pub struct Nunit {
    version: NunitVersion,
    suites: Vec<SuiteState>,
    case: Option<CaseState>,
    repeated: RepeatedNames,
}

impl Nunit {
    pub fn new(version: NunitVersion) -> Self {
        Self {
            version,
            suites: Vec::new(),
            case: None,
            repeated: RepeatedNames::default(),
        }
    }
}

/// An open element, and what it collects.
pub enum Frame {
    Root,
    Suite,
    /// NUnit 2's `<results>`, which holds a suite's children.
    Results,
    Case,
    /// `<failure>` of a case (or else of a suite).
    Failure {
        on_case: bool,
    },
    /// `<reason>` of a case (or else of a suite).
    Reason {
        on_case: bool,
    },
    Message(CappedTextBuilder),
    StackTrace(CappedTextBuilder),
    Output(CappedTextBuilder),
    Properties,
    Categories,
    /// Anything this importer does not read; its text is dropped.
    Ignored,
}

struct SuiteState {
    /// `fullname` (NUnit 3) or `name`.
    name: Option<String>,
    /// Whether it is a test fixture (NUnit 3 `type="TestFixture"`), whose fullname
    /// names the suite of its cases.
    fixture: Option<SuiteName>,
    status: Option<ResultStatus>,
    failed_in_teardown: bool,
    message: Option<CappedText>,
    /// Whether a test case was found in it or in a nested suite.
    lists_cases: bool,
    at: Location,
}

struct CaseState {
    name: TestName,
    suite: Option<SuiteName>,
    status: ResultStatus,
    /// Whether `result` states the status (NUnit 2 before 2.5 says only `success`,
    /// sometimes not even that, for a case with a `<failure>`).
    result_stated: bool,
    has_failure: bool,
    duration_ms: Option<DurationMs>,
    started_at: Option<time::OffsetDateTime>,
    failure_message: Option<CappedText>,
    reason: Option<CappedText>,
    trace: Option<CappedText>,
    stdout: Option<CappedText>,
    attributes: Attributes,
    categories: Option<CappedTextBuilder>,
    at: Location,
}

impl Dialect for Nunit {
    type Frame = Frame;

    fn format(&self) -> ReportFormat {
        match self.version {
            NunitVersion::Two => ReportFormat::Nunit2,
            NunitVersion::Three => ReportFormat::Nunit3,
        }
    }

    fn text_sink(frame: &mut Frame) -> Option<&mut CappedTextBuilder> {
        match frame {
            Frame::Message(text) | Frame::StackTrace(text) | Frame::Output(text) => Some(text),
            _ => None,
        }
    }

    fn open<R: Read>(
        &mut self,
        parents: &[Frame],
        tag: &Tag<'_, R>,
        out: &mut Collected,
    ) -> Result<Frame, ImportError> {
        let parent = parents.last();
        Ok(match (parent, tag.name) {
            (None, _) => {
                self.open_root(tag, out)?;
                Frame::Root
            }
            (Some(Frame::Root), "environment") => {
                if let Some(version) = tag.attributes()?.non_blank("nunit-version") {
                    out.summary.tool = Some(cap_label(&format!("NUnit {version}")));
                }
                Frame::Ignored
            }
            (Some(Frame::Root | Frame::Suite | Frame::Results), "test-suite") => {
                self.open_suite(tag, out)?;
                Frame::Suite
            }
            (Some(Frame::Suite | Frame::Results), "results") => Frame::Results,
            (Some(Frame::Root | Frame::Suite | Frame::Results), "test-case") => {
                self.open_case(tag, out)?;
                Frame::Case
            }
            (Some(Frame::Case | Frame::Suite | Frame::Results), "failure") => Frame::Failure {
                on_case: matches!(parent, Some(Frame::Case)),
            },
            (Some(Frame::Case | Frame::Suite | Frame::Results), "reason") => Frame::Reason {
                on_case: matches!(parent, Some(Frame::Case)),
            },
            (Some(Frame::Failure { .. } | Frame::Reason { .. }), "message") => {
                Frame::Message(CappedTextBuilder::new(TextField::Message))
            }
            (Some(Frame::Failure { .. }), "stack-trace") => {
                Frame::StackTrace(CappedTextBuilder::new(TextField::Trace))
            }
            (Some(Frame::Case), "output") => {
                Frame::Output(CappedTextBuilder::new(TextField::Stdout))
            }
            (Some(Frame::Case), "properties") => Frame::Properties,
            (Some(Frame::Case), "categories") => Frame::Categories,
            (Some(Frame::Properties), "property") => {
                let attributes = tag.attributes()?;
                if let (Some(case), Some(name)) = (&mut self.case, attributes.non_blank("name")) {
                    let value = attributes.get("value").unwrap_or_default();
                    if name == "Category" {
                        case.add_category(value);
                    } else if !name.starts_with('_') {
                        case.attributes.insert_lenient(name, value);
                    }
                }
                Frame::Ignored
            }
            (Some(Frame::Categories), "category") => {
                let attributes = tag.attributes()?;
                if let (Some(case), Some(name)) = (&mut self.case, attributes.non_blank("name")) {
                    case.add_category(name);
                }
                Frame::Ignored
            }
            _ => Frame::Ignored,
        })
    }

    fn close(
        &mut self,
        frame: Frame,
        parents: &mut [Frame],
        out: &mut Collected,
    ) -> Result<(), ImportError> {
        match frame {
            Frame::Suite => {
                if let Some(suite) = self.suites.pop() {
                    self.close_suite(suite, out);
                }
            }
            Frame::Case => {
                if let Some(case) = self.case.take() {
                    Self::finish_case(case, out)?;
                }
            }
            Frame::Message(text) => {
                let text = trimmed(text.finish());
                match parents.last() {
                    Some(Frame::Failure { on_case: true }) => {
                        if let Some(case) = &mut self.case {
                            case.failure_message = text;
                        }
                    }
                    Some(Frame::Reason { on_case: true }) => {
                        if let Some(case) = &mut self.case {
                            case.reason = text;
                        }
                    }
                    Some(Frame::Failure { on_case: false } | Frame::Reason { on_case: false }) => {
                        if let Some(suite) = self.suites.last_mut() {
                            suite.message = suite.message.take().or(text);
                        }
                    }
                    _ => {}
                }
            }
            Frame::StackTrace(text) => {
                if let (Some(Frame::Failure { on_case: true }), Some(case)) =
                    (parents.last(), &mut self.case)
                {
                    case.trace = trimmed(text.finish());
                }
            }
            Frame::Output(text) => {
                if let Some(case) = &mut self.case {
                    case.stdout = Some(text.finish()).filter(|text| !text.is_blank());
                }
            }
            Frame::Failure { on_case: true } => {
                if let Some(case) = &mut self.case {
                    case.has_failure = true;
                }
            }
            Frame::Root
            | Frame::Results
            | Frame::Failure { on_case: false }
            | Frame::Reason { .. }
            | Frame::Properties
            | Frame::Categories
            | Frame::Ignored => {}
        }
        Ok(())
    }
}

impl Nunit {
    /// Reads what the root says about the whole run.
    fn open_root<R: Read>(
        &mut self,
        tag: &Tag<'_, R>,
        out: &mut Collected,
    ) -> Result<(), ImportError> {
        let attributes = tag.attributes()?;
        let count = |key| attributes.get(key).and_then(parse_count);
        let summary = &mut out.summary;
        summary.name = attributes.non_blank("name").map(cap_label);
        match self.version {
            NunitVersion::Three => {
                summary.declared = DeclaredCounts {
                    tests: count("total"),
                    passed: count("passed"),
                    failed: count("failed"),
                    skipped: sum(count("skipped"), count("inconclusive")),
                    ..DeclaredCounts::default()
                };
                summary.started_at = attributes.get("start-time").and_then(parse_timestamp);
                summary.duration_ms = attributes.get("duration").and_then(parse_seconds);
                summary.tool = attributes
                    .non_blank("engine-version")
                    .map(|version| cap_label(&format!("NUnit engine {version}")));
            }
            NunitVersion::Two => {
                let (not_run, invalid) = (count("not-run"), count("invalid"));
                summary.declared = DeclaredCounts {
                    tests: sum(count("total"), not_run),
                    failed: count("failures"),
                    errored: sum(count("errors"), invalid),
                    skipped: sum(
                        not_run.map(|not_run| not_run.saturating_sub(invalid.unwrap_or(0))),
                        count("inconclusive"),
                    ),
                    ..DeclaredCounts::default()
                };
                summary.started_at = match (attributes.get("date"), attributes.get("time")) {
                    (Some(date), Some(time)) => parse_timestamp(&format!("{date}T{time}")),
                    _ => None,
                };
            }
        }
        Ok(())
    }

    fn open_suite<R: Read>(
        &mut self,
        tag: &Tag<'_, R>,
        out: &mut Collected,
    ) -> Result<(), ImportError> {
        let attributes = tag.attributes()?;
        let name = attributes
            .non_blank("fullname")
            .or_else(|| attributes.non_blank("name"));
        let fixture = match (self.version, attributes.get("type"), name) {
            (NunitVersion::Three, Some("TestFixture"), Some(name)) => Some(
                SuiteName::parse(name)
                    .map_err(|err| tag.invalid(format!("test-suite fullname {err}")))?,
            ),
            _ => None,
        };
        if attributes.get("type") == Some("Assembly") && out.summary.name.is_none() {
            out.summary.name = attributes.non_blank("name").map(cap_label);
        }
        let status = self.stated_status(&attributes);
        self.suites.push(SuiteState {
            name: name.map(cap_label),
            fixture,
            status,
            failed_in_teardown: attributes.get("site") == Some("TearDown")
                && status.is_some_and(ResultStatus::is_failure),
            message: None,
            lists_cases: false,
            at: tag.position(),
        });
        Ok(())
    }

    fn open_case<R: Read>(
        &mut self,
        tag: &Tag<'_, R>,
        out: &mut Collected,
    ) -> Result<(), ImportError> {
        let attributes = tag.attributes()?;
        let at = tag.position();
        let fixture = self
            .suites
            .iter()
            .rev()
            .find_map(|suite| suite.fixture.clone());
        let full_name = attributes
            .non_blank("fullname")
            .or_else(|| attributes.non_blank("name"));
        let qualified = full_name.and_then(split_qualified);
        let (suite, name) = match self.version {
            NunitVersion::Three => {
                let suite = match (fixture, attributes.non_blank("classname"), qualified) {
                    (Some(fixture), _, _) => Some(fixture),
                    (None, Some(class), _) | (None, None, Some((class, _))) => Some(
                        SuiteName::parse(class)
                            .map_err(|err| tag.invalid(format!("test-case classname {err}")))?,
                    ),
                    (None, None, None) => None,
                };
                let name = attributes
                    .non_blank("name")
                    .or(qualified.map(|(_, method)| method))
                    .or(full_name);
                (suite, name)
            }
            NunitVersion::Two => match qualified {
                Some((class, method)) => (
                    Some(
                        SuiteName::parse(class)
                            .map_err(|err| tag.invalid(format!("test-case name {err}")))?,
                    ),
                    Some(method),
                ),
                None => (
                    self.suites
                        .last()
                        .and_then(|suite| suite.name.as_deref())
                        .and_then(|name| SuiteName::parse(name).ok()),
                    full_name,
                ),
            },
        };
        let name = TestName::parse(name.unwrap_or_default())
            .map_err(|err| tag.invalid(format!("test-case name {err}")))?;
        let status = self.stated_status(&attributes).unwrap_or_else(|| {
            out.warnings.push(
                &at,
                &format!(
                    "the result {:?} is not one NUnit writes; it is read as skipped",
                    attributes.get("result").unwrap_or_default()
                ),
            );
            ResultStatus::Skipped
        });
        let duration = match self.version {
            NunitVersion::Three => attributes
                .get("duration")
                .or_else(|| attributes.get("time")),
            NunitVersion::Two => attributes.get("time"),
        };
        if let Some(suite) = self.suites.last_mut() {
            suite.lists_cases = true;
        }
        self.case = Some(CaseState {
            name: self.repeated.distinct(&suite, name),
            suite,
            status,
            result_stated: attributes.get("result").is_some(),
            has_failure: false,
            duration_ms: duration.and_then(parse_seconds),
            started_at: attributes.get("start-time").and_then(parse_timestamp),
            failure_message: None,
            reason: None,
            trace: None,
            stdout: None,
            attributes: Attributes::default(),
            categories: None,
            at,
        });
        Ok(())
    }

    /// The status a case's (or suite's) attributes state, if NUnit writes it so.
    fn stated_status(&self, attributes: &TagAttributes) -> Option<ResultStatus> {
        let result = attributes.get("result");
        match self.version {
            NunitVersion::Three => nunit3_status(result, attributes.get("label")),
            NunitVersion::Two => nunit2_status(
                result,
                attributes.get("executed").map(is_true),
                attributes.get("success").map(is_true),
            ),
        }
    }

    fn finish_case(case: CaseState, out: &mut Collected) -> Result<(), ImportError> {
        let mut attributes = case.attributes;
        if let Some(categories) = case.categories {
            attributes.insert_lenient("category", &categories.finish_string());
        }
        let status = match case.status {
            ResultStatus::Passed if case.has_failure && !case.result_stated => ResultStatus::Failed,
            status => status,
        };
        let report = AttemptReport {
            duration_ms: case.duration_ms,
            started_at: case.started_at,
            message: case.failure_message.or(case.reason),
            trace: case.trace,
            stdout: case.stdout,
            ..AttemptReport::bare(status)
        };
        out.push_attempts(case.at, case.suite, case.name, attributes, vec![report])
    }

    /// Notes a suite that failed where no test case shows it, and tells its parent
    /// whether it held test cases.
    fn close_suite(&mut self, suite: SuiteState, out: &mut Collected) {
        let label = suite.name.as_deref().unwrap_or("(unnamed)");
        let reason = suite
            .message
            .as_ref()
            .map_or(String::new(), |message| format!(": {}", message.as_str()));
        let failed = suite.status.is_some_and(ResultStatus::is_failure);
        if failed && !suite.lists_cases {
            out.warnings.push(
                &suite.at,
                &format!("the suite {label:?} failed and lists no test case{reason}"),
            );
        } else if suite.failed_in_teardown {
            out.warnings.push(
                &suite.at,
                &format!("the suite {label:?} failed in its one-time teardown{reason}"),
            );
        }
        if let Some(parent) = self.suites.last_mut() {
            parent.lists_cases |= suite.lists_cases;
        }
    }
}

impl CaseState {
    fn add_category(&mut self, name: &str) {
        match &mut self.categories {
            Some(categories) => {
                categories.push_str(", ");
                categories.push_str(name);
            }
            None => {
                let mut categories = CappedTextBuilder::with_limit(MAX_ATTRIBUTE_VALUE_BYTES);
                categories.push_str(name);
                self.categories = Some(categories);
            }
        }
    }
}

fn nunit3_status(result: Option<&str>, label: Option<&str>) -> Option<ResultStatus> {
    match (result?, label) {
        ("Passed" | "Warning", _) => Some(ResultStatus::Passed),
        ("Failed", Some("Error" | "Invalid" | "Cancelled")) => Some(ResultStatus::Errored),
        ("Failed", _) => Some(ResultStatus::Failed),
        ("Skipped" | "Inconclusive", _) => Some(ResultStatus::Skipped),
        _ => None,
    }
}

fn nunit2_status(
    result: Option<&str>,
    executed: Option<bool>,
    success: Option<bool>,
) -> Option<ResultStatus> {
    match (result, executed, success) {
        (Some("Success"), _, _) => Some(ResultStatus::Passed),
        (Some("Failure"), _, _) => Some(ResultStatus::Failed),
        (Some("Error" | "Cancelled" | "NotRunnable"), _, _) => Some(ResultStatus::Errored),
        (Some("Ignored" | "Skipped" | "Inconclusive"), _, _) => Some(ResultStatus::Skipped),
        (Some(_), _, _) => None,
        (None, Some(false), _) => Some(ResultStatus::Skipped),
        (None, _, Some(false)) => Some(ResultStatus::Failed),
        (None, _, _) => Some(ResultStatus::Passed),
    }
}

/// NUnit writes `True` and `False`; some tools that write its format, `true`.
fn is_true(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("true")
}

/// Splits a qualified test name (`Namespace.Class.Method(args)`) at its last `.` outside
/// parentheses, brackets and quotes: the class and the method with its arguments.
fn split_qualified(name: &str) -> Option<(&str, &str)> {
    let (mut depth, mut quoted, mut split) = (0i64, false, None);
    for (index, c) in name.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' | '[' | '<' if !quoted => depth += 1,
            ')' | ']' | '>' if !quoted => depth -= 1,
            '.' if depth == 0 && !quoted => split = Some(index),
            _ => {}
        }
    }
    split
        .map(|index| (&name[..index], &name[index + 1..]))
        .filter(|(class, method)| !class.trim().is_empty() && !method.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_split_at_the_last_dot_outside_arguments() {
        assert_eq!(
            split_qualified("UnitTests.MainClassTest.TestFailure"),
            Some(("UnitTests.MainClassTest", "TestFailure"))
        );
        assert_eq!(
            split_qualified("NUnit.Tests.FixtureWithTestCases.GenericMethod<Double>(9.2d,11.7d)"),
            Some((
                "NUnit.Tests.FixtureWithTestCases",
                "GenericMethod<Double>(9.2d,11.7d)"
            ))
        );
        assert_eq!(
            split_qualified("NUnit.Tests.GenericFixture<Double>(11.5d).Test1"),
            Some(("NUnit.Tests.GenericFixture<Double>(11.5d)", "Test1"))
        );
        assert_eq!(
            split_qualified("A.B.Test(\"a.b\", \"(\")"),
            Some(("A.B", "Test(\"a.b\", \"(\")"))
        );
        assert_eq!(split_qualified("testChangePassword"), None);
        assert_eq!(split_qualified(".hidden"), None);
        assert_eq!(split_qualified("trailing."), None);
    }

    #[test]
    fn nunit_2_results_before_and_after_the_result_attribute() {
        use ResultStatus::{Errored, Failed, Passed, Skipped};
        assert_eq!(
            nunit2_status(Some("NotRunnable"), Some(false), None),
            Some(Errored)
        );
        assert_eq!(
            nunit2_status(Some("Inconclusive"), Some(true), Some(false)),
            Some(Skipped)
        );
        assert_eq!(nunit2_status(None, Some(false), None), Some(Skipped));
        assert_eq!(nunit2_status(None, Some(true), Some(false)), Some(Failed));
        assert_eq!(nunit2_status(None, Some(true), Some(true)), Some(Passed));
        assert_eq!(nunit2_status(Some("Exploded"), None, None), None);
    }

    #[test]
    fn nunit_3_labels_tell_errors_from_failures() {
        use ResultStatus::{Errored, Failed, Passed, Skipped};
        assert_eq!(nunit3_status(Some("Failed"), Some("Error")), Some(Errored));
        assert_eq!(
            nunit3_status(Some("Failed"), Some("Invalid")),
            Some(Errored)
        );
        assert_eq!(
            nunit3_status(Some("Failed"), Some("Test exceeded Timeout value 1ms.")),
            Some(Failed)
        );
        assert_eq!(
            nunit3_status(Some("Skipped"), Some("Explicit")),
            Some(Skipped)
        );
        assert_eq!(nunit3_status(Some("Inconclusive"), None), Some(Skipped));
        assert_eq!(nunit3_status(Some("Warning"), None), Some(Passed));
        assert_eq!(nunit3_status(None, None), None);
    }
}
