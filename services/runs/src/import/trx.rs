//! Visual Studio TRX (`<TestRun>`, written by `dotnet test --logger trx`, vstest.console
//! and mstest.exe), streamed on the shared [`XmlReader`] loop. A TRX lists its results
//! before its `<TestDefinitions>`, where each test's class is, so it is read twice:
//! [`read_classes`] keeps only the class of each test id (interned, so memory grows
//! with the number of tests, never with their output), then the results are read one
//! at a time.
//!
//! Mapping:
//! * status (`outcome`): `Passed`, `PassedButRunAborted`, `Completed` and `Warning`
//!   passed; `Failed` failed; `Error`, `Timeout`, `Aborted`, `Disconnected` and
//!   `NotRunnable` errored (the test did not run to a verdict of its own);
//!   `NotExecuted`, `Inconclusive`, `Pending` and `InProgress` skipped; an unknown one
//!   skipped, with a warning;
//! * suite: the `className` of the test's `<TestMethod>` (without an assembly
//!   qualification); name: `testName` without that class prefix (xUnit.net writes it
//!   qualified);
//! * a result with `<InnerResults>` (the rows of a data-driven test, the retries of a
//!   test) stands for its inner results and is not a result of its own; inner results
//!   that repeat the name of the one before them are its later attempts;
//! * message and trace: `<ErrorInfo>`'s `<Message>` and `<StackTrace>`; stdout and
//!   stderr: `<StdOut>` and `<StdErr>`; duration: `duration` (`hh:mm:ss.fffffff`);
//!   start: `startTime`;
//! * a run whose own outcome is a failure (`<ResultSummary outcome>`, the test host
//!   crashed or the run was aborted) while no result failed is named in a warning, with
//!   its first `<RunInfo>` error;
//! * report summary: `<ResultSummary><Counters>` (`total`, `passed`, `failed`, and
//!   `error` + `timeout` + `aborted` as errored), `<Times>` start and finish, the run's
//!   `name`.

use std::collections::HashMap;
use std::io::Read;

use crate::domain::limits::MAX_ATTEMPT;
use crate::domain::{
    Attempt, Attributes, CappedText, CappedTextBuilder, DurationMs, NewResult, ResultStatus,
    SuiteName, TestName, TextField,
};

use super::xml_reader::{invalid, Collected, Dialect, Tag, TagAttributes, XmlReader};
use super::{
    cap_label, parse_count, parse_timespan, parse_timestamp, sum, trimmed, DeclaredCounts,
    ImportError, Location, ReportFormat, ReportItem,
};

/// Test definitions whose class is kept, at most, per report.
pub const MAX_TRX_DEFINITIONS: usize = 1_000_000;

/// The class of each test of a TRX, by test id.
#[derive(Default)]
pub struct TestClasses {
    names: Vec<SuiteName>,
    by_name: HashMap<String, u32>,
    by_test: HashMap<u128, u32>,
    /// Definitions beyond [`MAX_TRX_DEFINITIONS`], whose class is not kept.
    dropped: u64,
    /// Where the first dropped one is.
    first_dropped_at: Option<Location>,
}

impl TestClasses {
    fn insert(&mut self, test: u128, class: SuiteName, at: Location) {
        if self.by_test.len() >= MAX_TRX_DEFINITIONS {
            self.dropped += 1;
            self.first_dropped_at.get_or_insert(at);
            return;
        }
        let index = match self.by_name.get(class.as_str()) {
            Some(&index) => index,
            None => {
                let index = self.names.len() as u32;
                self.by_name.insert(class.as_str().to_owned(), index);
                self.names.push(class);
                index
            }
        };
        self.by_test.insert(test, index);
    }

    fn class_of(&self, test: Option<u128>) -> Option<&SuiteName> {
        let index = *self.by_test.get(&test?)?;
        self.names.get(index as usize)
    }
}

/// Reads a whole TRX for the class of each test.
pub fn read_classes(input: impl Read) -> Result<TestClasses, ImportError> {
    let mut reader = XmlReader::with_dialect(input, Definitions::default());
    for item in reader.by_ref() {
        item?;
    }
    let (_, _, definitions) = reader.into_parts();
    Ok(definitions.classes)
}

/// The first pass: `<TestDefinitions>` only.
#[derive(Default)]
pub struct Definitions {
    classes: TestClasses,
}

pub enum DefinitionFrame {
    Root,
    Definitions,
    /// A `<UnitTest>` (or another test type) and its id.
    Test(Option<u128>),
    Ignored,
}

impl Dialect for Definitions {
    type Frame = DefinitionFrame;

    fn format(&self) -> ReportFormat {
        ReportFormat::Trx
    }

    fn text_sink(_: &mut DefinitionFrame) -> Option<&mut CappedTextBuilder> {
        None
    }

    fn open<R: Read>(
        &mut self,
        parents: &[DefinitionFrame],
        tag: &Tag<'_, R>,
        _: &mut Collected,
    ) -> Result<DefinitionFrame, ImportError> {
        Ok(match (parents.last(), tag.name) {
            (None, _) => DefinitionFrame::Root,
            (Some(DefinitionFrame::Root), "TestDefinitions") => DefinitionFrame::Definitions,
            (Some(DefinitionFrame::Definitions), _) => {
                DefinitionFrame::Test(tag.attributes()?.get("id").and_then(parse_guid))
            }
            (Some(DefinitionFrame::Test(Some(test))), "TestMethod") => {
                let test = *test;
                let attributes = tag.attributes()?;
                if let Some(class) = attributes.non_blank("className").map(unqualified) {
                    let class = SuiteName::parse(class)
                        .map_err(|err| tag.invalid(format!("TestMethod className {err}")))?;
                    self.classes.insert(test, class, tag.position());
                }
                DefinitionFrame::Ignored
            }
            _ => DefinitionFrame::Ignored,
        })
    }

    fn close(
        &mut self,
        _: DefinitionFrame,
        _: &mut [DefinitionFrame],
        _: &mut Collected,
    ) -> Result<(), ImportError> {
        Ok(())
    }
}

/// What TRX's elements mean, once the classes are known.
pub struct Trx {
    classes: TestClasses,
    /// Open results, innermost last.
    results: Vec<ResultState>,
    /// Results without a `testName` so far, to number them.
    unnamed: u64,
    /// Whether any result failed or errored.
    any_failure: bool,
    /// The run's own `outcome` (`<ResultSummary outcome>`), and where it is.
    run_outcome: Option<(String, Location)>,
    /// The first error the run reports outside its results (`<RunInfo outcome="Error">`).
    run_error: Option<CappedText>,
}

impl Trx {
    pub fn new(classes: TestClasses) -> Self {
        Self {
            classes,
            results: Vec::new(),
            unnamed: 0,
            any_failure: false,
            run_outcome: None,
            run_error: None,
        }
    }
}

pub enum Frame {
    Root,
    Results,
    Result,
    InnerResults,
    Output,
    ErrorInfo,
    ResultSummary,
    RunInfos,
    /// A `<RunInfo>`, and whether it reports an error.
    RunInfo(bool),
    Text(TextSlot, CappedTextBuilder),
    Ignored,
}

#[derive(Clone, Copy)]
pub enum TextSlot {
    Stdout,
    Stderr,
    Message,
    Trace,
    RunError,
}

struct ResultState {
    name: TestName,
    suite: Option<SuiteName>,
    status: ResultStatus,
    duration_ms: Option<DurationMs>,
    started_at: Option<time::OffsetDateTime>,
    message: Option<CappedText>,
    trace: Option<CappedText>,
    stdout: Option<CappedText>,
    stderr: Option<CappedText>,
    /// Whether it has inner results, and so stands for them.
    aggregate: bool,
    /// The name and attempt of its last inner result, to number retries.
    last_inner: Option<(TestName, u32)>,
    at: Location,
}

impl Dialect for Trx {
    type Frame = Frame;

    fn format(&self) -> ReportFormat {
        ReportFormat::Trx
    }

    fn text_sink(frame: &mut Frame) -> Option<&mut CappedTextBuilder> {
        match frame {
            Frame::Text(_, text) => Some(text),
            _ => None,
        }
    }

    fn open<R: Read>(
        &mut self,
        parents: &[Frame],
        tag: &Tag<'_, R>,
        out: &mut Collected,
    ) -> Result<Frame, ImportError> {
        Ok(match (parents.last(), tag.name) {
            (None, _) => {
                self.open_root(tag, out)?;
                Frame::Root
            }
            (Some(Frame::Root), "Times") => {
                let attributes = tag.attributes()?;
                let start = attributes.get("start").and_then(parse_timestamp);
                let finish = attributes.get("finish").and_then(parse_timestamp);
                out.summary.started_at = start;
                out.summary.duration_ms = match (start, finish) {
                    (Some(start), Some(finish)) if finish >= start => {
                        DurationMs::new((finish - start).whole_milliseconds() as u64).ok()
                    }
                    _ => None,
                };
                Frame::Ignored
            }
            (Some(Frame::Root), "Results") => Frame::Results,
            (Some(Frame::Results | Frame::InnerResults), _) => {
                self.open_result(tag, out)?;
                Frame::Result
            }
            (Some(Frame::Result), "InnerResults") => {
                if let Some(result) = self.results.last_mut() {
                    result.aggregate = true;
                }
                Frame::InnerResults
            }
            (Some(Frame::Result), "Output") => Frame::Output,
            (Some(Frame::Output), "StdOut") => {
                Frame::Text(TextSlot::Stdout, CappedTextBuilder::new(TextField::Stdout))
            }
            (Some(Frame::Output), "StdErr") => {
                Frame::Text(TextSlot::Stderr, CappedTextBuilder::new(TextField::Stderr))
            }
            (Some(Frame::Output), "ErrorInfo") => Frame::ErrorInfo,
            (Some(Frame::ErrorInfo), "Message") => Frame::Text(
                TextSlot::Message,
                CappedTextBuilder::new(TextField::Message),
            ),
            (Some(Frame::ErrorInfo), "StackTrace") => {
                Frame::Text(TextSlot::Trace, CappedTextBuilder::new(TextField::Trace))
            }
            (Some(Frame::Root), "ResultSummary") => {
                if let Some(outcome) = tag.attributes()?.non_blank("outcome") {
                    self.run_outcome = Some((outcome.to_owned(), tag.position()));
                }
                Frame::ResultSummary
            }
            (Some(Frame::ResultSummary), "RunInfos") => Frame::RunInfos,
            (Some(Frame::RunInfos), "RunInfo") => {
                Frame::RunInfo(tag.attributes()?.get("outcome") == Some("Error"))
            }
            (Some(Frame::RunInfo(true)), "Text") => Frame::Text(
                TextSlot::RunError,
                CappedTextBuilder::new(TextField::Message),
            ),
            (Some(Frame::ResultSummary), "Counters") => {
                out.summary.declared = declared_counts(&tag.attributes()?);
                Frame::Ignored
            }
            _ => Frame::Ignored,
        })
    }

    fn close(
        &mut self,
        frame: Frame,
        _: &mut [Frame],
        out: &mut Collected,
    ) -> Result<(), ImportError> {
        match frame {
            Frame::Result => {
                if let Some(result) = self.results.pop() {
                    self.finish_result(result, out)?;
                }
            }
            Frame::Text(TextSlot::RunError, text) => {
                if self.run_error.is_none() {
                    self.run_error = trimmed(text.finish());
                }
            }
            // The summary may come before the results (mstest.exe) or after them.
            Frame::Root => self.close_run(out),
            Frame::Text(slot, text) => {
                if let Some(result) = self.results.last_mut() {
                    let text = text.finish();
                    match slot {
                        TextSlot::Stdout => {
                            result.stdout = Some(text).filter(|text| !text.is_blank());
                        }
                        TextSlot::Stderr => {
                            result.stderr = Some(text).filter(|text| !text.is_blank());
                        }
                        TextSlot::Message => result.message = trimmed(text),
                        TextSlot::Trace | TextSlot::RunError => result.trace = trimmed(text),
                    }
                }
            }
            Frame::Results
            | Frame::ResultSummary
            | Frame::InnerResults
            | Frame::Output
            | Frame::ErrorInfo
            | Frame::RunInfos
            | Frame::RunInfo(_)
            | Frame::Ignored => {}
        }
        Ok(())
    }
}

impl Trx {
    fn open_root<R: Read>(
        &mut self,
        tag: &Tag<'_, R>,
        out: &mut Collected,
    ) -> Result<(), ImportError> {
        out.summary.name = tag.attributes()?.non_blank("name").map(cap_label);
        if self.classes.dropped > 0 {
            let at = self
                .classes
                .first_dropped_at
                .clone()
                .unwrap_or_else(|| tag.position());
            out.warnings.push(
                &at,
                &format!(
                    "the classes of only the first {MAX_TRX_DEFINITIONS} test definitions are kept; {} tests have no suite",
                    self.classes.dropped
                ),
            );
        }
        Ok(())
    }

    fn open_result<R: Read>(
        &mut self,
        tag: &Tag<'_, R>,
        out: &mut Collected,
    ) -> Result<(), ImportError> {
        let attributes = tag.attributes()?;
        let at = tag.position();
        let suite = self
            .classes
            .class_of(attributes.get("testId").and_then(parse_guid))
            .cloned();
        let name = match attributes.non_blank("testName") {
            Some(full_name) => {
                let short = suite
                    .as_ref()
                    .and_then(|class| full_name.strip_prefix(class.as_str()))
                    .and_then(|rest| rest.strip_prefix('.'))
                    .filter(|rest| !rest.trim().is_empty())
                    .unwrap_or(full_name);
                TestName::parse(short).map_err(|err| tag.invalid(format!("testName {err}")))?
            }
            None => {
                self.unnamed += 1;
                let name = format!("(unnamed {})", self.unnamed);
                out.warnings.push(
                    &at,
                    &format!("a result without a testName is imported as {name:?}"),
                );
                TestName::parse(name).map_err(|err| tag.invalid(format!("testName {err}")))?
            }
        };
        let outcome = attributes.get("outcome");
        let status = outcome_status(outcome).unwrap_or_else(|| {
            out.warnings.push(
                &at,
                &format!(
                    "the outcome {:?} is not one TRX defines; it is read as skipped",
                    outcome.unwrap_or_default()
                ),
            );
            ResultStatus::Skipped
        });
        self.results.push(ResultState {
            name,
            suite,
            status,
            duration_ms: attributes.get("duration").and_then(parse_timespan),
            started_at: attributes.get("startTime").and_then(parse_timestamp),
            message: None,
            trace: None,
            stdout: None,
            stderr: None,
            aggregate: false,
            last_inner: None,
            at,
        });
        Ok(())
    }

    /// Hands out a finished result, unless it stands for inner results. An inner
    /// result named like the one before it is its next attempt.
    fn finish_result(
        &mut self,
        result: ResultState,
        out: &mut Collected,
    ) -> Result<(), ImportError> {
        if result.aggregate {
            return Ok(());
        }
        let number = match self.results.last_mut() {
            Some(parent) => {
                let number = match &parent.last_inner {
                    Some((name, attempt)) if *name == result.name => attempt.saturating_add(1),
                    _ => 1,
                };
                parent.last_inner = Some((result.name.clone(), number));
                number
            }
            None => 1,
        };
        if number > MAX_ATTEMPT {
            return Err(invalid(
                ReportFormat::Trx,
                result.at,
                format!("a test may have at most {MAX_ATTEMPT} attempts, this one has more"),
            ));
        }
        let attempt = Attempt::new(number)
            .map_err(|err| invalid(ReportFormat::Trx, result.at.clone(), err.to_string()))?;
        self.any_failure |= result.status.is_failure();
        out.ready.push_back(ReportItem::Result(NewResult {
            id: None,
            suite: result.suite,
            name: result.name,
            status: result.status,
            attempt,
            duration_ms: result.duration_ms,
            started_at: result.started_at,
            message: result.message,
            trace: result.trace,
            stdout: result.stdout,
            stderr: result.stderr,
            attributes: Attributes::default(),
        }));
        Ok(())
    }
}

impl Trx {
    /// Notes a run whose own outcome says it failed while none of its results did (the
    /// test host crashed, the run was aborted): it must not look clean.
    fn close_run(&mut self, out: &mut Collected) {
        let Some((outcome, at)) = &self.run_outcome else {
            return;
        };
        let failed = matches!(outcome.as_str(), "Failed" | "Error" | "Aborted" | "Timeout");
        if failed && !self.any_failure {
            let reason = self
                .run_error
                .as_ref()
                .map_or(String::new(), |text| format!(": {}", text.as_str()));
            out.warnings.push(
                at,
                &format!("the run's outcome is {outcome} though no test failed{reason}"),
            );
        }
    }
}

fn outcome_status(outcome: Option<&str>) -> Option<ResultStatus> {
    match outcome? {
        "Passed" | "PassedButRunAborted" | "Completed" | "Warning" => Some(ResultStatus::Passed),
        "Failed" => Some(ResultStatus::Failed),
        "Error" | "Timeout" | "Aborted" | "Disconnected" | "NotRunnable" => {
            Some(ResultStatus::Errored)
        }
        "NotExecuted" | "Inconclusive" | "Pending" | "InProgress" => Some(ResultStatus::Skipped),
        _ => None,
    }
}

fn declared_counts(counters: &TagAttributes) -> DeclaredCounts {
    let count = |key| counters.get(key).and_then(parse_count);
    DeclaredCounts {
        tests: count("total"),
        passed: count("passed"),
        failed: count("failed"),
        errored: sum(sum(count("error"), count("timeout")), count("aborted")),
        ..DeclaredCounts::default()
    }
}

/// A class name without the assembly qualification old mstest.exe adds
/// (`Tests.Cart, Tests, Version=1.0.0.0, Culture=neutral, PublicKeyToken=null`).
fn unqualified(class: &str) -> &str {
    class
        .split_once(',')
        .map_or(class, |(class, _)| class)
        .trim()
}

/// A GUID such as `55ef2114-eb39-77d8-4031-3da68d0dc505`, as one number.
fn parse_guid(text: &str) -> Option<u128> {
    let text = text.trim();
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || text.len() > 38 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_read_with_or_without_dashes() {
        assert_eq!(
            parse_guid("55ef2114-eb39-77d8-4031-3da68d0dc505"),
            parse_guid("55EF2114EB3977D840313DA68D0DC505")
        );
        assert!(parse_guid("55ef2114-eb39-77d8-4031-3da68d0dc505").is_some());
        assert_eq!(parse_guid("not a guid"), None);
        assert_eq!(parse_guid("+5ef2114-eb39-77d8-4031-3da68d0dc505"), None);
    }

    #[test]
    fn assembly_qualified_class_names_lose_the_assembly() {
        assert_eq!(
            unqualified("Tests.Cart, Tests, Version=1.0.0.0, Culture=neutral"),
            "Tests.Cart"
        );
        assert_eq!(unqualified("Tests.Cart"), "Tests.Cart");
    }

    #[test]
    fn every_outcome_trx_defines_has_a_status() {
        for (outcome, status) in [
            ("Passed", ResultStatus::Passed),
            ("Warning", ResultStatus::Passed),
            ("Failed", ResultStatus::Failed),
            ("Timeout", ResultStatus::Errored),
            ("Aborted", ResultStatus::Errored),
            ("Error", ResultStatus::Errored),
            ("NotExecuted", ResultStatus::Skipped),
            ("Inconclusive", ResultStatus::Skipped),
        ] {
            assert_eq!(outcome_status(Some(outcome)), Some(status), "{outcome}");
        }
        assert_eq!(outcome_status(Some("Exploded")), None);
        assert_eq!(outcome_status(None), None);
    }
}
