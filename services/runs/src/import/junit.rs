//! JUnit XML, streamed on the shared [`XmlReader`] loop: each finished `<testcase>`
//! becomes results at once, so memory stays bounded by one piece of markup and one test
//! case whatever the report's size.
//!
//! Dialects: Ant/Surefire/Gradle (including Surefire's `flakyFailure`, `flakyError`,
//! `rerunFailure` and `rerunError`, which Playwright writes too), pytest, jest-junit,
//! gotestsum, googletest and Playwright; `<testsuites>` and `<testsuite>` nest freely.
//!
//! Mapping:
//! * suite: the case's `classname`, else the innermost `<testsuite name>`;
//! * name: the case's `name`; a case without one (some generators write them for setup
//!   failures) is named by its `classname`, or `(unnamed N)` (the N-th such case of the
//!   document) when it has none or repeats the previous unnamed case's, with a warning;
//! * status: `<error>` errored, `<failure>` failed, `<skipped>` skipped; without any of
//!   them skipped when the case says `status="disabled"` (or googletest's
//!   `status="notrun"`), its `message` the reason, else passed;
//! * message: the outcome's `message` attribute, else the first line of its text; trace:
//!   the outcome's text;
//! * attempts: each `flaky*` element is an earlier failed attempt before the case's own
//!   outcome, each `rerun*` element a later attempt after it with the case's own
//!   category (failed or errored, as Surefire counts it), so a test that failed and
//!   then passed comes out as failed attempts followed by a passed one;
//! * properties: the case's `<properties>`, plus its `file` and `line` attributes;
//! * a `<testsuite>` that declares counts but lists no test case, itself or in a nested
//!   suite (some runners write only the summary when a suite aborts), gets one
//!   synthetic result per declared test, named `(unlisted failure N)`, `(unlisted error
//!   N)`, `(unlisted skipped test N)` and `(unlisted passed test N)` (N counting through
//!   the document), so the run counts what the report declares and does not look clean
//!   when it is not; at most [`MAX_UNLISTED_RESULTS`] per report; each such suite is
//!   named in a warning;
//! * report summary: the root's `name`, `tests`, `failures`, `errors`, `skipped` (plus
//!   `disabled`), `time` and `timestamp`, or, when a `<testsuites>` root has no `tests`,
//!   the sums over its top-level suites (and their earliest timestamp).

use std::io::Read;

use crate::domain::limits::MAX_ATTRIBUTE_VALUE_BYTES;
use crate::domain::{
    Attempt, Attributes, CappedText, CappedTextBuilder, DurationMs, NewResult, ResultStatus,
    SuiteName, TestName, TextField,
};

use super::xml_reader::{invalid, Collected, Dialect, Tag, TagAttributes, XmlReader};
use super::{
    cap_label, collect_items, first_line, parse_count, parse_seconds, parse_timestamp, sum,
    trimmed, AttemptReport, DeclaredCounts, ImportError, Location, ParsedReport, ParsedSuite,
    ReportFormat, ReportItem,
};

/// Synthetic results recorded, per report, for suites that declare counts without
/// listing test cases: a report declaring billions of tests gets no billions of rows.
pub const MAX_UNLISTED_RESULTS: u64 = 10_000;

/// Parses a whole JUnit XML report into memory. Use [`JunitReader`] to handle results
/// one at a time instead.
pub fn parse_junit(input: impl Read) -> Result<ParsedReport, ImportError> {
    let mut reader = JunitReader::new(input);
    let (results, suites) = collect_items(&mut reader)?;
    let (summary, warnings, _) = reader.into_parts();
    Ok(ParsedReport {
        summary,
        warnings: warnings.to_vec(),
        results,
        suites,
    })
}

/// Yields the results and suites of a JUnit XML report as they are read. After an
/// error it yields nothing more. The summary is complete once the iterator is done.
pub type JunitReader<R> = XmlReader<R, Junit>;

impl<R: Read> JunitReader<R> {
    pub fn new(input: R) -> Self {
        XmlReader::with_dialect(input, Junit::default())
    }
}

/// What JUnit's elements mean.
#[derive(Default)]
pub struct Junit {
    suites: Vec<SuiteState>,
    case: Option<CaseState>,
    /// Whether the root states the counts itself, so its suites' counts are not added.
    root_declares_counts: bool,
    /// Cases without a name so far, to number them.
    unnamed: u64,
    /// The class of the last case without a name that was named after it.
    last_unnamed_class: Option<String>,
    unlisted: Unlisted,
}

/// An open element, and what it collects.
pub enum Frame {
    Testsuites,
    Testsuite,
    Testcase,
    Properties,
    Property {
        name: Option<String>,
        value: Option<String>,
        text: CappedTextBuilder,
    },
    /// `<failure>`, `<error>` or `<skipped>` of a test case.
    Outcome {
        status: ResultStatus,
        message: Option<String>,
        text: CappedTextBuilder,
    },
    Output {
        stream: OutputStream,
        text: CappedTextBuilder,
    },
    /// One of Surefire's `flaky*` and `rerun*` elements: another attempt of the case.
    Retry(Box<RetryState>),
    StackTrace(CappedTextBuilder),
    /// Anything this importer does not read; its text is dropped.
    Ignored,
}

#[derive(Clone, Copy)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

struct SuiteState {
    name: Option<SuiteName>,
    properties: Attributes,
    stdout: Option<CappedText>,
    stderr: Option<CappedText>,
    /// The suite's own `tests`, `failures`, `errors` and `skipped`.
    declared: DeclaredCounts,
    /// Whether a test case was found in it or in a nested suite.
    lists_cases: bool,
    at: Location,
}

struct CaseState {
    name: TestName,
    suite: Option<SuiteName>,
    duration_ms: Option<DurationMs>,
    properties: Attributes,
    outcome: Option<Outcome>,
    stdout: Option<CappedText>,
    stderr: Option<CappedText>,
    /// Failed attempts before the case's own outcome.
    earlier: Vec<RetryState>,
    /// Failed attempts after it.
    later: Vec<RetryState>,
    /// Set for a case marked as not run (`status="disabled"`), with the case's
    /// `message`, if any, as the reason.
    not_run: Option<Option<CappedText>>,
    at: Location,
}

struct Outcome {
    status: ResultStatus,
    message: Option<CappedText>,
    trace: Option<CappedText>,
}

pub struct RetryState {
    after_outcome: bool,
    status: ResultStatus,
    message: Option<String>,
    duration_ms: Option<DurationMs>,
    /// Text directly inside the element, the trace when there is no `<stackTrace>`.
    text: CappedTextBuilder,
    stack_trace: Option<CappedText>,
    stdout: Option<CappedText>,
    stderr: Option<CappedText>,
}

impl RetryState {
    fn into_report(self) -> AttemptReport {
        let trace = self.stack_trace.or_else(|| trimmed(self.text.finish()));
        let message = self
            .message
            .filter(|message| !message.trim().is_empty())
            .map(|message| TextField::Message.cap(message))
            .or_else(|| trace.as_ref().and_then(first_line));
        AttemptReport {
            duration_ms: self.duration_ms,
            message,
            trace,
            stdout: self.stdout,
            stderr: self.stderr,
            ..AttemptReport::bare(self.status)
        }
    }
}

/// Synthetic results recorded so far, by status, to number them through the document.
#[derive(Default)]
struct Unlisted {
    failed: u64,
    errored: u64,
    skipped: u64,
    passed: u64,
}

impl Unlisted {
    fn total(&self) -> u64 {
        self.failed + self.errored + self.skipped + self.passed
    }

    /// The number of the next synthetic result of `status`.
    fn next(&mut self, status: ResultStatus) -> u64 {
        let counter = match status {
            ResultStatus::Failed => &mut self.failed,
            ResultStatus::Errored => &mut self.errored,
            ResultStatus::Skipped => &mut self.skipped,
            ResultStatus::Passed => &mut self.passed,
        };
        *counter += 1;
        *counter
    }
}

/// The counts a suite or the root states; disabled tests count as skipped.
fn declared_counts(attributes: &TagAttributes) -> DeclaredCounts {
    let count = |key| attributes.get(key).and_then(parse_count);
    DeclaredCounts {
        tests: count("tests"),
        failed: count("failures"),
        errored: count("errors"),
        skipped: sum(count("skipped"), count("disabled")),
        ..DeclaredCounts::default()
    }
}

impl Dialect for Junit {
    type Frame = Frame;

    fn format(&self) -> ReportFormat {
        ReportFormat::Junit
    }

    fn text_sink(frame: &mut Frame) -> Option<&mut CappedTextBuilder> {
        frame.text_mut()
    }

    fn open<R: Read>(
        &mut self,
        parents: &[Frame],
        tag: &Tag<'_, R>,
        out: &mut Collected,
    ) -> Result<Frame, ImportError> {
        Ok(match (parents.last(), tag.name) {
            (None, "testsuites") => {
                self.open_root(tag, out)?;
                Frame::Testsuites
            }
            // The loop lets no other root through.
            (None, _) => {
                self.open_root(tag, out)?;
                self.open_suite(parents, tag, out)?;
                Frame::Testsuite
            }
            (Some(Frame::Testsuites | Frame::Testsuite), "testsuites") => Frame::Testsuites,
            (Some(Frame::Testsuites | Frame::Testsuite), "testsuite") => {
                self.open_suite(parents, tag, out)?;
                Frame::Testsuite
            }
            (Some(Frame::Testsuites | Frame::Testsuite), "testcase") => {
                self.open_case(tag, out)?;
                Frame::Testcase
            }
            (Some(Frame::Testsuite | Frame::Testcase), "properties") => Frame::Properties,
            (Some(Frame::Properties), "property") => {
                let attributes = tag.attributes()?;
                Frame::Property {
                    name: attributes.get("name").map(str::to_owned),
                    value: attributes.get("value").map(str::to_owned),
                    text: CappedTextBuilder::with_limit(MAX_ATTRIBUTE_VALUE_BYTES),
                }
            }
            (Some(Frame::Testsuite | Frame::Testcase | Frame::Retry(_)), "system-out") => {
                Frame::Output {
                    stream: OutputStream::Stdout,
                    text: CappedTextBuilder::new(TextField::Stdout),
                }
            }
            (Some(Frame::Testsuite | Frame::Testcase | Frame::Retry(_)), "system-err") => {
                Frame::Output {
                    stream: OutputStream::Stderr,
                    text: CappedTextBuilder::new(TextField::Stderr),
                }
            }
            (Some(Frame::Testcase), "failure" | "error" | "skipped") => Frame::Outcome {
                status: match tag.name {
                    "failure" => ResultStatus::Failed,
                    "error" => ResultStatus::Errored,
                    _ => ResultStatus::Skipped,
                },
                message: tag.attributes()?.get("message").map(str::to_owned),
                text: CappedTextBuilder::new(TextField::Trace),
            },
            (
                Some(Frame::Testcase),
                "flakyFailure" | "flakyError" | "rerunFailure" | "rerunError",
            ) => {
                let attributes = tag.attributes()?;
                Frame::Retry(Box::new(RetryState {
                    after_outcome: tag.name.starts_with("rerun"),
                    status: if tag.name.ends_with("Error") {
                        ResultStatus::Errored
                    } else {
                        ResultStatus::Failed
                    },
                    message: attributes.get("message").map(str::to_owned),
                    duration_ms: attributes.get("time").and_then(parse_seconds),
                    text: CappedTextBuilder::new(TextField::Trace),
                    stack_trace: None,
                    stdout: None,
                    stderr: None,
                }))
            }
            (Some(Frame::Retry(_)), "stackTrace") => {
                Frame::StackTrace(CappedTextBuilder::new(TextField::Trace))
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
            Frame::Testsuites | Frame::Properties | Frame::Ignored => {}
            Frame::Testsuite => {
                if let Some(suite) = self.suites.pop() {
                    self.close_suite(suite, out)?;
                }
            }
            Frame::Testcase => {
                if let Some(case) = self.case.take() {
                    finish_case(case, out)?;
                }
            }
            Frame::Property { name, value, text } => {
                let text = text.finish_string();
                let value = value.unwrap_or_else(|| text.trim().to_owned());
                let properties = match parents.iter().rev().nth(1) {
                    Some(Frame::Testcase) => self.case.as_mut().map(|case| &mut case.properties),
                    Some(Frame::Testsuite) => {
                        self.suites.last_mut().map(|suite| &mut suite.properties)
                    }
                    _ => None,
                };
                if let (Some(properties), Some(name)) = (properties, name) {
                    properties.insert_lenient(&name, &value);
                }
            }
            Frame::Outcome {
                status,
                message,
                text,
            } => {
                if let Some(case) = &mut self.case {
                    // When a case has several outcomes, the gravest one stands.
                    let graver = case
                        .outcome
                        .as_ref()
                        .is_none_or(|current| gravity(status) > gravity(current.status));
                    if graver {
                        let (message, trace) = message_and_trace(message, text.finish());
                        case.outcome = Some(Outcome {
                            status,
                            message,
                            trace,
                        });
                    }
                }
            }
            Frame::Output { stream, text } => {
                let text = Some(text.finish()).filter(|text| !text.is_blank());
                let slot = match (parents.last_mut(), stream) {
                    (Some(Frame::Testcase), OutputStream::Stdout) => {
                        self.case.as_mut().map(|case| &mut case.stdout)
                    }
                    (Some(Frame::Testcase), OutputStream::Stderr) => {
                        self.case.as_mut().map(|case| &mut case.stderr)
                    }
                    (Some(Frame::Testsuite), OutputStream::Stdout) => {
                        self.suites.last_mut().map(|suite| &mut suite.stdout)
                    }
                    (Some(Frame::Testsuite), OutputStream::Stderr) => {
                        self.suites.last_mut().map(|suite| &mut suite.stderr)
                    }
                    (Some(Frame::Retry(retry)), OutputStream::Stdout) => Some(&mut retry.stdout),
                    (Some(Frame::Retry(retry)), OutputStream::Stderr) => Some(&mut retry.stderr),
                    _ => None,
                };
                if let Some(slot) = slot {
                    *slot = text;
                }
            }
            Frame::StackTrace(text) => {
                if let Some(Frame::Retry(retry)) = parents.last_mut() {
                    retry.stack_trace = trimmed(text.finish());
                }
            }
            Frame::Retry(retry) => {
                if let Some(case) = &mut self.case {
                    if retry.after_outcome {
                        case.later.push(*retry);
                    } else {
                        case.earlier.push(*retry);
                    }
                }
            }
        }
        Ok(())
    }
}

impl Junit {
    /// Reads what the root element says about the whole report.
    fn open_root<R: Read>(
        &mut self,
        tag: &Tag<'_, R>,
        out: &mut Collected,
    ) -> Result<(), ImportError> {
        let attributes = tag.attributes()?;
        let summary = &mut out.summary;
        summary.name = attributes.non_blank("name").map(cap_label);
        summary.declared = declared_counts(&attributes);
        summary.started_at = attributes.get("timestamp").and_then(parse_timestamp);
        summary.duration_ms = attributes.get("time").and_then(parse_seconds);
        self.root_declares_counts = summary.declared.tests.is_some();
        Ok(())
    }

    fn open_suite<R: Read>(
        &mut self,
        parents: &[Frame],
        tag: &Tag<'_, R>,
        out: &mut Collected,
    ) -> Result<(), ImportError> {
        let attributes = tag.attributes()?;
        let declared = declared_counts(&attributes);
        let top_level = matches!(parents, [Frame::Testsuites]);
        if top_level && !self.root_declares_counts {
            let summary = &mut out.summary;
            summary.declared.add(&declared);
            let started_at = attributes.get("timestamp").and_then(parse_timestamp);
            summary.started_at = match (summary.started_at, started_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(time) = attributes.get("time").and_then(parse_seconds) {
                let total = summary.duration_ms.map_or(0, DurationMs::get) + time.get();
                summary.duration_ms = DurationMs::new(total).ok();
            }
        }
        let name = match attributes.non_blank("name") {
            Some(name) => Some(
                SuiteName::parse(name)
                    .map_err(|err| tag.invalid(format!("testsuite name {err}")))?,
            ),
            None => None,
        };
        self.suites.push(SuiteState {
            name,
            properties: Attributes::default(),
            stdout: None,
            stderr: None,
            declared,
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
        let classname = attributes.non_blank("classname");
        let suite = match classname {
            Some(classname) => Some(
                SuiteName::parse(classname)
                    .map_err(|err| tag.invalid(format!("testcase classname {err}")))?,
            ),
            None => self.suites.last().and_then(|suite| suite.name.clone()),
        };
        let name = match attributes.non_blank("name") {
            Some(name) => {
                TestName::parse(name).map_err(|err| tag.invalid(format!("testcase name {err}")))?
            }
            None => {
                let name = self.unnamed_case_name(classname);
                out.warnings.push(
                    &at,
                    &format!("a <testcase> without a name is imported as {name:?}"),
                );
                TestName::parse(name).map_err(|err| tag.invalid(format!("testcase name {err}")))?
            }
        };
        let not_run = matches!(attributes.get("status"), Some("disabled" | "notrun")).then(|| {
            attributes
                .non_blank("message")
                .map(|message| TextField::Message.cap(message))
        });
        let mut properties = Attributes::default();
        for key in ["file", "line"] {
            if let Some(value) = attributes.non_blank(key) {
                properties.insert_lenient(key, value);
            }
        }
        if let Some(suite) = self.suites.last_mut() {
            suite.lists_cases = true;
        }
        self.case = Some(CaseState {
            name,
            suite,
            duration_ms: attributes.get("time").and_then(parse_seconds),
            properties,
            outcome: None,
            stdout: None,
            stderr: None,
            earlier: Vec::new(),
            later: Vec::new(),
            not_run,
            at,
        });
        Ok(())
    }

    /// The name of a case that has none: its class, unless the previous unnamed case
    /// already took it, else `(unnamed N)`.
    fn unnamed_case_name(&mut self, classname: Option<&str>) -> String {
        self.unnamed += 1;
        match classname {
            Some(class) if self.last_unnamed_class.as_deref() != Some(class) => {
                self.last_unnamed_class = Some(class.to_owned());
                class.to_owned()
            }
            _ => format!("(unnamed {})", self.unnamed),
        }
    }

    /// Hands out a finished suite, after recording what it declares when it listed no
    /// test case, and tells its parent whether it held any.
    fn close_suite(&mut self, suite: SuiteState, out: &mut Collected) -> Result<(), ImportError> {
        let recorded = !suite.lists_cases && self.record_unlisted(&suite, out)?;
        if let Some(parent) = self.suites.last_mut() {
            parent.lists_cases |= suite.lists_cases || recorded;
        }
        out.ready.push_back(ReportItem::Suite(ParsedSuite {
            name: suite.name,
            properties: suite.properties,
            stdout: suite.stdout,
            stderr: suite.stderr,
        }));
        Ok(())
    }

    /// Records one synthetic result per test a suite declares without listing it;
    /// whether it declared any.
    fn record_unlisted(
        &mut self,
        suite: &SuiteState,
        out: &mut Collected,
    ) -> Result<bool, ImportError> {
        let declared = suite.declared;
        let failed = declared.failed.unwrap_or(0);
        let errored = declared.errored.unwrap_or(0);
        let skipped = declared.skipped.unwrap_or(0);
        let not_passed = failed.saturating_add(errored).saturating_add(skipped);
        let total = declared.tests.unwrap_or(0).max(not_passed);
        if total == 0 {
            return Ok(false);
        }
        let suite_label = suite.name.as_ref().map_or_else(
            || "<testsuite>".to_owned(),
            |name| format!("<testsuite> {:?}", name.as_str()),
        );
        out.warnings.push(
            &suite.at,
            &format!(
                "{suite_label} declares {total} tests ({failed} failed, {errored} errored, {skipped} skipped) but lists none; they are recorded as unlisted results"
            ),
        );
        for (status, count, label) in [
            (ResultStatus::Failed, failed, "failure"),
            (ResultStatus::Errored, errored, "error"),
            (ResultStatus::Skipped, skipped, "skipped test"),
            (ResultStatus::Passed, total - not_passed, "passed test"),
        ] {
            for _ in 0..count {
                if self.unlisted.total() >= MAX_UNLISTED_RESULTS {
                    out.warnings.push(
                        &suite.at,
                        &format!("only the first {MAX_UNLISTED_RESULTS} unlisted results of the report are recorded"),
                    );
                    return Ok(true);
                }
                let number = self.unlisted.next(status);
                let name =
                    TestName::parse(format!("(unlisted {label} {number})")).map_err(|err| {
                        invalid(ReportFormat::Junit, suite.at.clone(), err.to_string())
                    })?;
                out.ready.push_back(ReportItem::Result(unlisted_result(
                    suite.name.clone(),
                    status,
                    name,
                )));
            }
        }
        Ok(true)
    }
}

/// A synthetic result standing for a test a suite counts but does not list.
fn unlisted_result(suite: Option<SuiteName>, status: ResultStatus, name: TestName) -> NewResult {
    NewResult {
        id: None,
        suite,
        name,
        status,
        attempt: Attempt::FIRST,
        duration_ms: None,
        started_at: None,
        message: Some(
            TextField::Message
                .cap("the report counts this test in its suite's summary but does not list it"),
        ),
        trace: None,
        stdout: None,
        stderr: None,
        attributes: Attributes::default(),
    }
}

/// Turns a finished test case into one result per attempt.
fn finish_case(case: CaseState, out: &mut Collected) -> Result<(), ImportError> {
    let own = match (case.outcome, case.not_run) {
        (Some(outcome), _) => AttemptReport {
            message: outcome.message,
            trace: outcome.trace,
            ..AttemptReport::bare(outcome.status)
        },
        (None, Some(reason)) => AttemptReport {
            message: reason,
            ..AttemptReport::bare(ResultStatus::Skipped)
        },
        (None, None) => AttemptReport::bare(ResultStatus::Passed),
    };
    // Surefire counts a case by its own `<failure>` or `<error>`; its reruns only
    // add attempts, so they take that category (a `rerunError` after a `<failure>`
    // still leaves a failed test, as the report's own totals say).
    let category = own.status;
    let attempts = case
        .earlier
        .into_iter()
        .map(RetryState::into_report)
        .chain(std::iter::once(AttemptReport {
            duration_ms: case.duration_ms,
            stdout: case.stdout,
            stderr: case.stderr,
            ..own
        }))
        .chain(case.later.into_iter().map(|retry| AttemptReport {
            status: category,
            ..retry.into_report()
        }))
        .collect();
    out.push_attempts(case.at, case.suite, case.name, case.properties, attempts)
}

impl Frame {
    /// Where text inside this element goes, if it is kept.
    fn text_mut(&mut self) -> Option<&mut CappedTextBuilder> {
        match self {
            Frame::Property { text, .. }
            | Frame::Outcome { text, .. }
            | Frame::Output { text, .. }
            | Frame::StackTrace(text) => Some(text),
            Frame::Retry(retry) => Some(&mut retry.text),
            Frame::Testsuites
            | Frame::Testsuite
            | Frame::Testcase
            | Frame::Properties
            | Frame::Ignored => None,
        }
    }
}

/// How bad an outcome is, to pick one when a case reports several.
fn gravity(status: ResultStatus) -> u8 {
    match status {
        ResultStatus::Passed => 0,
        ResultStatus::Skipped => 1,
        ResultStatus::Failed => 2,
        ResultStatus::Errored => 3,
    }
}

/// Splits an outcome into a message and a trace. Without a `message` attribute (as
/// jest-junit writes them) the first line of the text is the message; a text that is
/// only that line is not repeated as a trace.
fn message_and_trace(
    message: Option<String>,
    text: CappedText,
) -> (Option<CappedText>, Option<CappedText>) {
    let trace = trimmed(text);
    match message.filter(|message| !message.trim().is_empty()) {
        Some(message) => (Some(TextField::Message.cap(message)), trace),
        None => {
            let message = trace.as_ref().and_then(first_line);
            let trace = trace
                .filter(|trace| Some(trace.as_str()) != message.as_ref().map(CappedText::as_str));
            (message, trace)
        }
    }
}
