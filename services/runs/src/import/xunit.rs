//! xUnit.net v2 XML (`<assemblies>`, written by `xunit.console -xml` and the xUnit.net
//! runners), streamed on the shared [`XmlReader`] loop: each finished `<test>` becomes a
//! result at once.
//!
//! Mapping:
//! * status (`result`): `Pass` passed, `Fail` failed, `Skip` and `NotRun` skipped; an
//!   unknown one skipped, with a warning;
//! * suite: the test's class (`type`); name: its `name` without the class prefix
//!   xUnit.net writes (a display name set in the test stays whole); tests named alike
//!   one after the other (theory rows whose data print the same) are told apart as
//!   `<name> #2`, `<name> #3`;
//! * message: `<failure><message>`, or for a skipped test its `<reason>`; trace:
//!   `<failure><stack-trace>`; stdout: `<output>`; duration: `time` in seconds;
//! * properties: the `<traits>` (values of a repeated trait joined by `, `), and
//!   `source-file` and `source-line` as `file` and `line`;
//! * each `<errors><error>` (a cleanup or a whole collection that failed outside any
//!   test) is an errored result named `(<type>) <name>` in the assembly's suite, so the
//!   run does not look clean; an assembly without tests is named in a warning;
//! * report summary: the sums of the assemblies' `total` (plus `errors`), `passed`,
//!   `failed`, `skipped` and `time`, the first assembly's start, file name and
//!   `test-framework`.

use std::io::Read;

use crate::domain::{
    Attributes, CappedText, CappedTextBuilder, DurationMs, ResultStatus, SuiteName, TestName,
    TextField,
};

use super::xml_reader::{Collected, Dialect, Tag};
use super::{
    cap_label, parse_count, parse_seconds, parse_timestamp, sum, trimmed, AttemptReport,
    DeclaredCounts, ImportError, Location, RepeatedNames, ReportFormat,
};

/// What xUnit.net's elements mean.
#[derive(Default)]
pub struct Xunit {
    /// Assemblies seen so far; the first names the report.
    assemblies: u64,
    assembly: Option<AssemblyState>,
    /// The test, or the assembly-level error, being read.
    case: Option<CaseState>,
    repeated: RepeatedNames,
}

pub enum Frame {
    Root,
    Assembly,
    Errors,
    Error,
    Collection,
    Test,
    Failure,
    Traits,
    Message(CappedTextBuilder),
    StackTrace(CappedTextBuilder),
    Reason(CappedTextBuilder),
    Output(CappedTextBuilder),
    Ignored,
}

struct AssemblyState {
    /// The assembly's file name, the suite of its errors.
    suite: Option<SuiteName>,
    lists_tests: bool,
    at: Location,
}

struct CaseState {
    name: TestName,
    suite: Option<SuiteName>,
    status: ResultStatus,
    duration_ms: Option<DurationMs>,
    message: Option<CappedText>,
    trace: Option<CappedText>,
    reason: Option<CappedText>,
    stdout: Option<CappedText>,
    attributes: Attributes,
    at: Location,
}

impl Dialect for Xunit {
    type Frame = Frame;

    fn format(&self) -> ReportFormat {
        ReportFormat::Xunit2
    }

    fn text_sink(frame: &mut Frame) -> Option<&mut CappedTextBuilder> {
        match frame {
            Frame::Message(text)
            | Frame::StackTrace(text)
            | Frame::Reason(text)
            | Frame::Output(text) => Some(text),
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
            (None, _) => Frame::Root,
            (Some(Frame::Root), "assembly") => {
                self.open_assembly(tag, out)?;
                Frame::Assembly
            }
            (Some(Frame::Assembly), "errors") => Frame::Errors,
            (Some(Frame::Errors), "error") => {
                self.open_error(tag)?;
                Frame::Error
            }
            (Some(Frame::Assembly), "collection") => Frame::Collection,
            (Some(Frame::Collection), "test") => {
                self.open_test(tag, out)?;
                Frame::Test
            }
            (Some(Frame::Test | Frame::Error), "failure") => Frame::Failure,
            (Some(Frame::Failure), "message") => {
                Frame::Message(CappedTextBuilder::new(TextField::Message))
            }
            (Some(Frame::Failure), "stack-trace") => {
                Frame::StackTrace(CappedTextBuilder::new(TextField::Trace))
            }
            (Some(Frame::Test), "reason") => {
                Frame::Reason(CappedTextBuilder::new(TextField::Message))
            }
            (Some(Frame::Test), "output") => {
                Frame::Output(CappedTextBuilder::new(TextField::Stdout))
            }
            (Some(Frame::Test), "traits") => Frame::Traits,
            (Some(Frame::Traits), "trait") => {
                let attributes = tag.attributes()?;
                if let (Some(case), Some(name)) = (&mut self.case, attributes.non_blank("name")) {
                    let value = attributes.get("value").unwrap_or_default();
                    let joined = match case.attributes.get(name) {
                        Some(earlier) => format!("{earlier}, {value}"),
                        None => value.to_owned(),
                    };
                    case.attributes.insert_lenient(name, &joined);
                }
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
            Frame::Assembly => {
                if let Some(assembly) = self.assembly.take() {
                    if !assembly.lists_tests {
                        let name = assembly.suite.as_ref().map_or("", SuiteName::as_str);
                        out.warnings.push(
                            &assembly.at,
                            &format!("the assembly {name:?} reports no tests"),
                        );
                    }
                }
            }
            Frame::Test | Frame::Error => {
                if let Some(case) = self.case.take() {
                    Self::finish_case(case, out)?;
                }
            }
            Frame::Message(text) => {
                if let Some(case) = &mut self.case {
                    case.message = trimmed(text.finish());
                }
            }
            Frame::StackTrace(text) => {
                if let Some(case) = &mut self.case {
                    case.trace = trimmed(text.finish());
                }
            }
            Frame::Reason(text) => {
                if let Some(case) = &mut self.case {
                    case.reason = trimmed(text.finish());
                }
            }
            Frame::Output(text) => {
                if let Some(case) = &mut self.case {
                    case.stdout = Some(text.finish()).filter(|text| !text.is_blank());
                }
            }
            Frame::Root
            | Frame::Errors
            | Frame::Collection
            | Frame::Failure
            | Frame::Traits
            | Frame::Ignored => {}
        }
        Ok(())
    }
}

impl Xunit {
    fn open_assembly<R: Read>(
        &mut self,
        tag: &Tag<'_, R>,
        out: &mut Collected,
    ) -> Result<(), ImportError> {
        let attributes = tag.attributes()?;
        let count = |key| attributes.get(key).and_then(parse_count);
        let file_name = attributes
            .non_blank("name")
            .and_then(|path| path.rsplit(['/', '\\']).next())
            .filter(|name| !name.trim().is_empty());
        let summary = &mut out.summary;
        self.assemblies += 1;
        if self.assemblies == 1 {
            summary.name = file_name.map(cap_label);
            summary.tool = attributes.non_blank("test-framework").map(cap_label);
            summary.started_at = match (attributes.get("run-date"), attributes.get("run-time")) {
                (Some(date), Some(time)) => parse_timestamp(&format!("{date}T{time}")),
                _ => None,
            };
        }
        let errors = count("errors");
        let declared = DeclaredCounts {
            tests: sum(count("total"), errors),
            passed: count("passed"),
            failed: count("failed"),
            errored: errors,
            skipped: count("skipped"),
            flaky: None,
        };
        summary.declared.add(&declared);
        if let Some(time) = attributes.get("time").and_then(parse_seconds) {
            let total = summary.duration_ms.map_or(0, DurationMs::get) + time.get();
            summary.duration_ms = DurationMs::new(total).ok();
        }
        let suite = match file_name {
            Some(name) => Some(
                SuiteName::parse(name)
                    .map_err(|err| tag.invalid(format!("assembly name {err}")))?,
            ),
            None => None,
        };
        self.assembly = Some(AssemblyState {
            suite,
            lists_tests: false,
            at: tag.position(),
        });
        Ok(())
    }

    fn open_test<R: Read>(
        &mut self,
        tag: &Tag<'_, R>,
        out: &mut Collected,
    ) -> Result<(), ImportError> {
        let attributes = tag.attributes()?;
        let at = tag.position();
        let class = attributes.non_blank("type");
        let full_name = attributes.get("name").unwrap_or_default();
        let short_name = class
            .and_then(|class| full_name.strip_prefix(class))
            .and_then(|rest| rest.strip_prefix('.'))
            .filter(|rest| !rest.trim().is_empty())
            .unwrap_or(full_name);
        let name =
            TestName::parse(short_name).map_err(|err| tag.invalid(format!("test name {err}")))?;
        let suite = match class {
            Some(class) => Some(
                SuiteName::parse(class).map_err(|err| tag.invalid(format!("test type {err}")))?,
            ),
            None => None,
        };
        let result = attributes.get("result");
        let status = match result {
            Some("Pass") => ResultStatus::Passed,
            Some("Fail") => ResultStatus::Failed,
            Some("Skip" | "NotRun") => ResultStatus::Skipped,
            other => {
                out.warnings.push(
                    &at,
                    &format!(
                        "the result {:?} is not one xUnit.net writes; it is read as skipped",
                        other.unwrap_or_default()
                    ),
                );
                ResultStatus::Skipped
            }
        };
        let mut properties = Attributes::default();
        for (key, attribute) in [("file", "source-file"), ("line", "source-line")] {
            if let Some(value) = attributes.non_blank(attribute) {
                properties.insert_lenient(key, value);
            }
        }
        if let Some(assembly) = &mut self.assembly {
            assembly.lists_tests = true;
        }
        self.case = Some(CaseState {
            name: self.repeated.distinct(&suite, name),
            suite,
            status,
            duration_ms: attributes.get("time").and_then(parse_seconds),
            message: None,
            trace: None,
            reason: None,
            stdout: None,
            attributes: properties,
            at,
        });
        Ok(())
    }

    /// An error outside any test, read as an errored result of the assembly.
    fn open_error<R: Read>(&mut self, tag: &Tag<'_, R>) -> Result<(), ImportError> {
        let attributes = tag.attributes()?;
        let kind = attributes.non_blank("type").unwrap_or("error");
        let name = match attributes.non_blank("name") {
            Some(name) => format!("({kind}) {name}"),
            None => format!("({kind})"),
        };
        let name = cap_label(&name);
        let name = TestName::parse(name).map_err(|err| tag.invalid(format!("error name {err}")))?;
        if let Some(assembly) = &mut self.assembly {
            assembly.lists_tests = true;
        }
        self.case = Some(CaseState {
            name,
            suite: self
                .assembly
                .as_ref()
                .and_then(|assembly| assembly.suite.clone()),
            status: ResultStatus::Errored,
            duration_ms: None,
            message: None,
            trace: None,
            reason: None,
            stdout: None,
            attributes: Attributes::default(),
            at: tag.position(),
        });
        Ok(())
    }

    fn finish_case(case: CaseState, out: &mut Collected) -> Result<(), ImportError> {
        let report = AttemptReport {
            duration_ms: case.duration_ms,
            message: case.message.or(case.reason),
            trace: case.trace,
            stdout: case.stdout,
            ..AttemptReport::bare(case.status)
        };
        out.push_attempts(
            case.at,
            case.suite,
            case.name,
            case.attributes,
            vec![report],
        )
    }
}
