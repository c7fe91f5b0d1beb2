//! JUnit XML, streamed: quick-xml reads the markup, [`read_char_data`] the text, and
//! each finished `<testcase>` becomes results at once, so memory stays bounded by one
//! piece of markup and one test case whatever the report's size.
//!
//! Dialects: Ant/Surefire/Gradle (including Surefire's `flakyFailure`, `flakyError`,
//! `rerunFailure` and `rerunError`, which Playwright writes too), pytest, jest-junit,
//! gotestsum and Playwright; `<testsuites>` and `<testsuite>` nest freely.
//!
//! Mapping:
//! * suite: the case's `classname`, else the innermost `<testsuite name>`;
//! * status: `<error>` errored, `<failure>` failed, `<skipped>` skipped, else passed;
//! * message: the outcome's `message` attribute, else the first line of its text; trace:
//!   the outcome's text;
//! * attempts: each `flaky*` element is an earlier failed attempt before the case's own
//!   outcome, each `rerun*` element a later attempt after it with the case's own
//!   category (failed or errored, as Surefire counts it), so a test that failed and
//!   then passed comes out as failed attempts followed by a passed one;
//! * properties: the case's `<properties>`, plus its `file` and `line` attributes;
//! * report summary: the root's `name`, `tests`, `failures`, `errors`, `skipped`,
//!   `time` and `timestamp`, or, when a `<testsuites>` root has no `tests`, the sums
//!   over its top-level suites (and their earliest timestamp).

use std::collections::VecDeque;
use std::io::Read;

use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use crate::domain::limits::{MAX_ATTRIBUTE_VALUE_BYTES, MAX_XML_DEPTH, MAX_XML_MARKUP_BYTES};
use crate::domain::{
    Attributes, CappedText, CappedTextBuilder, DurationMs, ResultStatus, SuiteName, TestName,
    TextField,
};

use super::xml_source::{read_char_data, CharDataError, XmlSource};
use super::{
    attempt_results, cap_label, parse_count, parse_seconds, parse_timestamp, AttemptReport,
    DeclaredCounts, ImportError, Location, ParsedReport, ParsedSuite, ReportFormat, ReportItem,
    ReportSummary,
};

/// Parses a whole JUnit XML report into memory. Use [`JunitReader`] to handle results
/// one at a time instead.
pub fn parse_junit(input: impl Read) -> Result<ParsedReport, ImportError> {
    let mut reader = JunitReader::new(input);
    let mut results = Vec::new();
    let mut suites = Vec::new();
    for item in reader.by_ref() {
        match item? {
            ReportItem::Result(result) => results.push(result),
            ReportItem::Suite(suite) => suites.push(suite),
        }
    }
    Ok(ParsedReport {
        summary: reader.into_summary(),
        results,
        suites,
    })
}

/// Yields the results and suites of a JUnit XML report as they are read. After an
/// error it yields nothing more. The summary is complete once the iterator is done.
pub struct JunitReader<R> {
    reader: Reader<XmlSource<R>>,
    markup: Vec<u8>,
    frames: Vec<Frame>,
    /// The names of the open elements, alongside `frames`, for error messages.
    open_names: Vec<String>,
    suites: Vec<SuiteState>,
    case: Option<CaseState>,
    ready: VecDeque<ReportItem>,
    summary: ReportSummary,
    root_seen: bool,
    /// Whether the root states the counts itself, so its suites' counts are not added.
    root_declares_counts: bool,
    done: bool,
}

/// An open element, and what it collects.
enum Frame {
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

/// What an element's parent is, to decide what the element means.
#[derive(Clone, Copy)]
enum Parent {
    Document,
    Testsuites,
    Testsuite,
    Testcase,
    Properties,
    Retry,
    Other,
}

#[derive(Clone, Copy)]
enum OutputStream {
    Stdout,
    Stderr,
}

struct SuiteState {
    name: Option<SuiteName>,
    properties: Attributes,
    stdout: Option<CappedText>,
    stderr: Option<CappedText>,
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
    at: Location,
}

struct Outcome {
    status: ResultStatus,
    message: Option<CappedText>,
    trace: Option<CappedText>,
}

struct RetryState {
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
        let trace = self.stack_trace.or_else(|| trace_text(self.text.finish()));
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

/// The attributes of one start tag, by local name.
struct TagAttributes(Vec<(String, String)>);

impl TagAttributes {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// A value that says something: present and not blank.
    fn non_blank(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|value| !value.trim().is_empty())
    }

    fn declared_counts(&self) -> DeclaredCounts {
        DeclaredCounts {
            tests: self.get("tests").and_then(parse_count),
            failed: self.get("failures").and_then(parse_count),
            errored: self.get("errors").and_then(parse_count),
            skipped: self.get("skipped").and_then(parse_count),
            ..DeclaredCounts::default()
        }
    }
}

impl<R: Read> JunitReader<R> {
    pub fn new(input: R) -> Self {
        let mut reader = Reader::from_reader(XmlSource::new(input));
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        Self {
            reader,
            markup: Vec::new(),
            frames: Vec::new(),
            open_names: Vec::new(),
            suites: Vec::new(),
            case: None,
            ready: VecDeque::new(),
            summary: ReportSummary::new(ReportFormat::Junit),
            root_seen: false,
            root_declares_counts: false,
            done: false,
        }
    }

    /// What the report says about itself; complete once the iterator has finished.
    pub fn summary(&self) -> &ReportSummary {
        &self.summary
    }

    pub fn into_summary(self) -> ReportSummary {
        self.summary
    }

    /// Reads the text before the next piece of markup, then that markup.
    fn advance(&mut self) -> Result<(), ImportError> {
        let sink = self.frames.last_mut().and_then(Frame::text_mut);
        read_char_data(&mut self.reader, sink).map_err(|err| match err {
            CharDataError::Io(err) => ImportError::Read(err),
            CharDataError::Syntax { at, reason } => malformed(at, reason),
        })?;

        let mut markup = std::mem::take(&mut self.markup);
        markup.clear();
        self.reader.get_mut().begin_markup();
        let event = self.reader.read_event_into(&mut markup);
        self.reader.get_mut().end_markup();
        let handled = match event {
            Err(err) => Err(self.xml_error(err)),
            Ok(Event::Start(element)) => self.open(&element),
            Ok(Event::Empty(element)) => self.open(&element).and_then(|()| self.close()),
            Ok(Event::End(_)) => self.close(),
            Ok(Event::Eof) => self.finish(),
            // Declarations, comments, processing instructions and doctypes say nothing
            // about tests; text never reaches quick-xml (see `read_char_data`).
            Ok(_) => Ok(()),
        };
        self.markup = markup;
        handled
    }

    fn finish(&mut self) -> Result<(), ImportError> {
        self.done = true;
        if let Some(open) = self.open_names.last() {
            return Err(malformed(
                self.reader.get_ref().position(),
                format!("the document ends inside <{open}>"),
            ));
        }
        if !self.root_seen {
            return Err(invalid(
                self.reader.get_ref().position(),
                "there is no <testsuites> or <testsuite> element",
            ));
        }
        Ok(())
    }

    fn parent(&self) -> Parent {
        match self.frames.last() {
            None => Parent::Document,
            Some(Frame::Testsuites) => Parent::Testsuites,
            Some(Frame::Testsuite) => Parent::Testsuite,
            Some(Frame::Testcase) => Parent::Testcase,
            Some(Frame::Properties) => Parent::Properties,
            Some(Frame::Retry(_)) => Parent::Retry,
            Some(_) => Parent::Other,
        }
    }

    fn open(&mut self, element: &BytesStart<'_>) -> Result<(), ImportError> {
        if self.frames.len() >= MAX_XML_DEPTH {
            return Err(invalid(
                self.tag_position(),
                format!("elements nest deeper than {MAX_XML_DEPTH} levels"),
            ));
        }
        let local_name = element.local_name();
        let name: &str = local_name.as_ref();
        let frame = match (self.parent(), name) {
            (Parent::Document, _) if self.root_seen => {
                return Err(malformed(
                    self.tag_position(),
                    format!("<{name}> follows the root element; a document has one root"),
                ));
            }
            (Parent::Document, "testsuites") => {
                self.root_seen = true;
                self.open_root(element)?;
                Frame::Testsuites
            }
            (Parent::Document, "testsuite") => {
                self.root_seen = true;
                self.open_root(element)?;
                self.open_suite(element)?;
                Frame::Testsuite
            }
            (Parent::Document, _) => {
                return Err(invalid(
                    self.tag_position(),
                    format!("the root element is <{name}>, not <testsuites> or <testsuite>"),
                ));
            }
            (Parent::Testsuites | Parent::Testsuite, "testsuites") => Frame::Testsuites,
            (Parent::Testsuites | Parent::Testsuite, "testsuite") => {
                self.open_suite(element)?;
                Frame::Testsuite
            }
            (Parent::Testsuites | Parent::Testsuite, "testcase") => {
                self.open_case(element)?;
                Frame::Testcase
            }
            (Parent::Testsuite | Parent::Testcase, "properties") => Frame::Properties,
            (Parent::Properties, "property") => {
                let attributes = self.attributes(element)?;
                Frame::Property {
                    name: attributes.get("name").map(str::to_owned),
                    value: attributes.get("value").map(str::to_owned),
                    text: CappedTextBuilder::with_limit(MAX_ATTRIBUTE_VALUE_BYTES),
                }
            }
            (Parent::Testsuite | Parent::Testcase | Parent::Retry, "system-out") => Frame::Output {
                stream: OutputStream::Stdout,
                text: CappedTextBuilder::new(TextField::Stdout),
            },
            (Parent::Testsuite | Parent::Testcase | Parent::Retry, "system-err") => Frame::Output {
                stream: OutputStream::Stderr,
                text: CappedTextBuilder::new(TextField::Stderr),
            },
            (Parent::Testcase, "failure" | "error" | "skipped") => Frame::Outcome {
                status: match name {
                    "failure" => ResultStatus::Failed,
                    "error" => ResultStatus::Errored,
                    _ => ResultStatus::Skipped,
                },
                message: self.attributes(element)?.get("message").map(str::to_owned),
                text: CappedTextBuilder::new(TextField::Trace),
            },
            (Parent::Testcase, "flakyFailure" | "flakyError" | "rerunFailure" | "rerunError") => {
                let attributes = self.attributes(element)?;
                Frame::Retry(Box::new(RetryState {
                    after_outcome: name.starts_with("rerun"),
                    status: if name.ends_with("Error") {
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
            (Parent::Retry, "stackTrace") => {
                Frame::StackTrace(CappedTextBuilder::new(TextField::Trace))
            }
            _ => Frame::Ignored,
        };
        self.frames.push(frame);
        self.open_names.push(name.to_owned());
        Ok(())
    }

    /// Reads what the root element says about the whole report.
    fn open_root(&mut self, element: &BytesStart<'_>) -> Result<(), ImportError> {
        let attributes = self.attributes(element)?;
        self.summary.name = attributes.non_blank("name").map(cap_label);
        self.summary.declared = attributes.declared_counts();
        self.summary.started_at = attributes.get("timestamp").and_then(parse_timestamp);
        self.summary.duration_ms = attributes.get("time").and_then(parse_seconds);
        self.root_declares_counts = self.summary.declared.tests.is_some();
        Ok(())
    }

    fn open_suite(&mut self, element: &BytesStart<'_>) -> Result<(), ImportError> {
        let attributes = self.attributes(element)?;
        let top_level = matches!(self.frames.as_slice(), [Frame::Testsuites]);
        if top_level && !self.root_declares_counts {
            self.summary.declared.add(&attributes.declared_counts());
            let started_at = attributes.get("timestamp").and_then(parse_timestamp);
            self.summary.started_at = match (self.summary.started_at, started_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(time) = attributes.get("time").and_then(parse_seconds) {
                let total = self.summary.duration_ms.map_or(0, DurationMs::get) + time.get();
                self.summary.duration_ms = DurationMs::new(total).ok();
            }
        }
        let name = match attributes.non_blank("name") {
            Some(name) => Some(
                SuiteName::parse(name)
                    .map_err(|err| invalid(self.tag_position(), format!("testsuite name {err}")))?,
            ),
            None => None,
        };
        self.suites.push(SuiteState {
            name,
            properties: Attributes::default(),
            stdout: None,
            stderr: None,
        });
        Ok(())
    }

    fn open_case(&mut self, element: &BytesStart<'_>) -> Result<(), ImportError> {
        let attributes = self.attributes(element)?;
        let at = self.tag_position();
        let name = TestName::parse(attributes.get("name").unwrap_or_default())
            .map_err(|err| invalid(at.clone(), format!("testcase name {err}")))?;
        let suite = match attributes.non_blank("classname") {
            Some(classname) => Some(
                SuiteName::parse(classname)
                    .map_err(|err| invalid(at.clone(), format!("testcase classname {err}")))?,
            ),
            None => self.suites.last().and_then(|suite| suite.name.clone()),
        };
        let mut properties = Attributes::default();
        for key in ["file", "line"] {
            if let Some(value) = attributes.non_blank(key) {
                properties.insert_lenient(key, value);
            }
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
            at,
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), ImportError> {
        self.open_names.pop();
        let Some(frame) = self.frames.pop() else {
            // quick-xml refuses unmatched end tags before they get here.
            return Ok(());
        };
        match frame {
            Frame::Testsuites | Frame::Properties | Frame::Ignored => {}
            Frame::Testsuite => {
                if let Some(suite) = self.suites.pop() {
                    self.ready.push_back(ReportItem::Suite(ParsedSuite {
                        name: suite.name,
                        properties: suite.properties,
                        stdout: suite.stdout,
                        stderr: suite.stderr,
                    }));
                }
            }
            Frame::Testcase => {
                if let Some(case) = self.case.take() {
                    self.finish_case(case)?;
                }
            }
            Frame::Property { name, value, text } => {
                let text = text.finish_string();
                let value = value.unwrap_or_else(|| text.trim().to_owned());
                let properties = match self.frames.iter().rev().nth(1) {
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
                let slot = match (self.frames.last_mut(), stream) {
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
                if let Some(Frame::Retry(retry)) = self.frames.last_mut() {
                    retry.stack_trace = trace_text(text.finish());
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

    /// Turns a finished test case into one result per attempt.
    fn finish_case(&mut self, case: CaseState) -> Result<(), ImportError> {
        let own = match case.outcome {
            Some(outcome) => AttemptReport {
                message: outcome.message,
                trace: outcome.trace,
                ..AttemptReport::bare(outcome.status)
            },
            None => AttemptReport::bare(ResultStatus::Passed),
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
        let results = attempt_results(case.suite, case.name, case.properties, attempts)
            .map_err(|err| invalid(case.at, err.to_string()))?;
        self.ready
            .extend(results.into_iter().map(ReportItem::Result));
        Ok(())
    }

    fn attributes(&self, element: &BytesStart<'_>) -> Result<TagAttributes, ImportError> {
        let mut attributes = Vec::new();
        for attribute in element.attributes() {
            let attribute = attribute.map_err(|err| self.attribute_error(&err))?;
            let key = attribute.key.local_name().as_ref().to_owned();
            let value = attribute
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| malformed(self.tag_position(), err.to_string()))?;
            attributes.push((key, value.into_owned()));
        }
        Ok(TagAttributes(attributes))
    }

    /// Where the tag being handled starts.
    fn tag_position(&self) -> Location {
        let source = self.reader.get_ref();
        source.markup_position(source.markup_offset())
    }

    fn attribute_error(&self, err: &AttrError) -> ImportError {
        let within_tag = match *err {
            AttrError::ExpectedEq(at)
            | AttrError::ExpectedValue(at)
            | AttrError::UnquotedValue(at)
            | AttrError::ExpectedQuote(at, _)
            | AttrError::Duplicated(at, _) => at,
        };
        let source = self.reader.get_ref();
        let reason = err.to_string();
        // quick-xml prefixes the reason with the offset inside the tag, which is of no
        // use once the error has a line and column.
        let reason = match reason.split_once(": ") {
            Some((prefix, rest)) if prefix.starts_with("position ") => rest.to_owned(),
            _ => reason,
        };
        // `within_tag` counts from the byte after `<`.
        malformed(
            source.markup_position(source.markup_offset() + 1 + within_tag as u64),
            reason,
        )
    }

    fn xml_error(&self, err: quick_xml::Error) -> ImportError {
        let source = self.reader.get_ref();
        if source.over_budget() {
            return malformed(
                source.markup_position(source.markup_offset()),
                format!("one piece of markup is longer than {MAX_XML_MARKUP_BYTES} bytes"),
            );
        }
        match err {
            quick_xml::Error::Io(err) => {
                ImportError::Read(std::io::Error::new(err.kind(), err.to_string()))
            }
            err => malformed(
                source.markup_position(self.reader.error_position()),
                err.to_string(),
            ),
        }
    }
}

impl<R: Read> Iterator for JunitReader<R> {
    type Item = Result<ReportItem, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            if let Err(err) = self.advance() {
                self.done = true;
                self.ready.clear();
                return Some(Err(err));
            }
        }
    }
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
    let trace = trace_text(text);
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

/// A trace without the blank lines report writers pad it with; none if it is blank.
fn trace_text(text: CappedText) -> Option<CappedText> {
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

fn malformed(at: Location, reason: impl Into<String>) -> ImportError {
    ImportError::Malformed {
        format: ReportFormat::Junit,
        at,
        reason: reason.into(),
    }
}

fn invalid(at: Location, reason: impl Into<String>) -> ImportError {
    ImportError::Invalid {
        format: ReportFormat::Junit,
        at,
        reason: reason.into(),
    }
}
