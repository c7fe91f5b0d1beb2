//! One test result: what a client sends ([`ResultInput`]) and what the service keeps
//! once it has been checked ([`NewResult`]). Parsing happens once, at the boundary;
//! everything past it holds only valid values.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::attempt::Attempt;
use super::attributes::Attributes;
use super::duration::DurationMs;
use super::limits::{MAX_REPORTED_FIELD_ERRORS, MAX_RESULTS_PER_BATCH};
use super::names::{InvalidValue, ResultId, SuiteName, TestName};
use super::status::ResultStatus;
use super::test_key::TestKey;
use super::text::{CappedText, TextField};
pub use crate::error::FieldError;

/// One result as a client sends it in `POST /runs/{run}/results`. Strings stay strings
/// here so that a bad value is reported against its field, not as a JSON type error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    pub name: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// 1-based; absent means 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
}

/// The body of `POST /runs/{run}/results`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultBatchInput {
    pub results: Vec<ResultInput>,
}

/// A checked result, from the API or from an imported report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewResult {
    pub id: Option<ResultId>,
    pub suite: Option<SuiteName>,
    pub name: TestName,
    pub status: ResultStatus,
    pub attempt: Attempt,
    pub duration_ms: Option<DurationMs>,
    pub started_at: Option<OffsetDateTime>,
    pub message: Option<CappedText>,
    pub trace: Option<CappedText>,
    pub stdout: Option<CappedText>,
    pub stderr: Option<CappedText>,
    pub attributes: Attributes,
}

impl NewResult {
    /// The test this result belongs to, across runs.
    pub fn test_key(&self) -> TestKey {
        TestKey::derive(self.suite.as_ref(), &self.name)
    }
}

/// A checked result as a client posts it: the reporter reads reports into checked
/// results and sends them to the API, which checks them again (it trusts no client).
impl From<NewResult> for ResultInput {
    fn from(result: NewResult) -> Self {
        let text = |text: Option<CappedText>| text.map(|t| t.as_str().to_owned());
        ResultInput {
            id: result.id.map(|id| id.as_str().to_owned()),
            suite: result.suite.map(|suite| suite.as_str().to_owned()),
            name: result.name.as_str().to_owned(),
            status: result.status.as_str().to_owned(),
            duration_ms: result.duration_ms.map(DurationMs::get),
            started_at: result.started_at.and_then(|at| at.format(&Rfc3339).ok()),
            attempt: Some(result.attempt.get()),
            message: text(result.message),
            trace: text(result.trace),
            stdout: text(result.stdout),
            stderr: text(result.stderr),
            attributes: (!result.attributes.is_empty()).then(|| result.attributes.as_map().clone()),
        }
    }
}

/// Everything wrong with a request body, up to [`MAX_REPORTED_FIELD_ERRORS`] entries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    pub fn into_errors(self) -> Vec<FieldError> {
        self.0
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            error.fmt(f)?;
        }
        Ok(())
    }
}

/// Collects field errors under a path prefix, keeping at most
/// [`MAX_REPORTED_FIELD_ERRORS`].
struct Problems<'a> {
    prefix: &'a str,
    errors: &'a mut Vec<FieldError>,
}

impl Problems<'_> {
    fn add(&mut self, field: &str, message: impl fmt::Display) {
        if self.errors.len() < MAX_REPORTED_FIELD_ERRORS {
            let field = if self.prefix.is_empty() {
                field.to_owned()
            } else {
                format!("{}.{field}", self.prefix)
            };
            self.errors.push(FieldError {
                field,
                message: message.to_string(),
            });
        }
    }

    /// The value, or `None` after noting why it was refused.
    fn check<T>(&mut self, field: &str, parsed: Result<T, InvalidValue>) -> Option<T> {
        parsed.map_err(|err| self.add(field, err)).ok()
    }

    /// Like [`Self::check`] for an optional field: `Some(None)` when it is absent.
    fn check_optional<T, U>(
        &mut self,
        field: &str,
        value: Option<T>,
        parse: impl FnOnce(T) -> Result<U, InvalidValue>,
    ) -> Option<Option<U>> {
        match value {
            None => Some(None),
            Some(value) => self.check(field, parse(value)).map(Some),
        }
    }
}

impl ResultInput {
    /// Checks every field and applies the limits. Errors name fields below `prefix`
    /// (`results[3]` gives `results[3].name`; an empty prefix gives `name`).
    pub fn validate(self, prefix: &str) -> Result<NewResult, ValidationErrors> {
        let mut errors = Vec::new();
        let result = self.validate_into(prefix, &mut errors);
        result
            .filter(|_| errors.is_empty())
            .ok_or(ValidationErrors(errors))
    }

    fn validate_into(self, prefix: &str, errors: &mut Vec<FieldError>) -> Option<NewResult> {
        let mut problems = Problems { prefix, errors };
        let id = problems.check_optional("id", self.id, ResultId::parse);
        // An empty suite is no suite, so that clients without one agree on the key.
        let suite = self.suite.filter(|suite| !suite.is_empty());
        let suite = problems.check_optional("suite", suite, SuiteName::parse);
        let name = problems.check("name", TestName::parse(self.name));
        let status = self
            .status
            .parse::<ResultStatus>()
            .map_err(|err| problems.add("status", err))
            .ok();
        let attempt = problems.check("attempt", Attempt::new(self.attempt.unwrap_or(1)));
        let duration_ms = problems.check_optional("duration_ms", self.duration_ms, DurationMs::new);
        let started_at =
            problems.check_optional("started_at", self.started_at, |text| parse_timestamp(&text));
        let attributes = match Attributes::parse(self.attributes.unwrap_or_default()) {
            Ok(attributes) => Some(attributes),
            Err(found) => {
                for problem in found {
                    match problem.key {
                        Some(key) => problems.add(&format!("attributes.{key}"), problem.reason),
                        None => problems.add("attributes", problem.reason),
                    }
                }
                None
            }
        };
        Some(NewResult {
            id: id?,
            suite: suite?,
            name: name?,
            status: status?,
            attempt: attempt?,
            duration_ms: duration_ms?,
            started_at: started_at?,
            message: self.message.map(|text| TextField::Message.cap(text)),
            trace: self.trace.map(|text| TextField::Trace.cap(text)),
            stdout: self.stdout.map(|text| TextField::Stdout.cap(text)),
            stderr: self.stderr.map(|text| TextField::Stderr.cap(text)),
            attributes: attributes?,
        })
    }
}

impl ResultBatchInput {
    /// Checks the batch size and every result; errors name fields as
    /// `results[<index>].<field>`.
    pub fn validate(self) -> Result<Vec<NewResult>, ValidationErrors> {
        let count = self.results.len();
        if !(1..=MAX_RESULTS_PER_BATCH).contains(&count) {
            return Err(ValidationErrors(vec![FieldError {
                field: "results".to_owned(),
                message: format!(
                    "must hold between 1 and {MAX_RESULTS_PER_BATCH} results, got {count}"
                ),
            }]));
        }
        let mut errors = Vec::new();
        let mut results = Vec::with_capacity(count);
        for (index, input) in self.results.into_iter().enumerate() {
            if let Some(result) = input.validate_into(&format!("results[{index}]"), &mut errors) {
                results.push(result);
            }
        }
        if errors.is_empty() {
            Ok(results)
        } else {
            Err(ValidationErrors(errors))
        }
    }
}

/// An RFC 3339 timestamp, normalised to UTC.
fn parse_timestamp(text: &str) -> Result<OffsetDateTime, InvalidValue> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|at| at.to_offset(UtcOffset::UTC))
        .map_err(|_| InvalidValue::new(format!("must be an RFC 3339 timestamp, got {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::limits::{
        MAX_ATTRIBUTES, MAX_MESSAGE_BYTES, MAX_NAME_BYTES, MAX_OUTPUT_BYTES, MAX_TRACE_BYTES,
    };
    use proptest::prelude::*;
    use serde_json::json;

    fn input(name: &str, status: &str) -> ResultInput {
        ResultInput {
            name: name.to_owned(),
            status: status.to_owned(),
            ..ResultInput::default()
        }
    }

    fn batch(results: Vec<ResultInput>) -> ResultBatchInput {
        ResultBatchInput { results }
    }

    fn fields(errors: &ValidationErrors) -> Vec<&str> {
        errors.errors().iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_full_result_is_parsed_from_json() {
        let body = json!({"results": [{
            "id": "r-1", "suite": "tests.test_math", "name": "test_adds", "status": "failed",
            "duration_ms": 12, "started_at": "2026-03-01T10:00:00+02:00", "attempt": 2,
            "message": "assert 1 == 2", "trace": "Traceback…", "stdout": "out", "stderr": "err",
            "attributes": {"browser": "firefox"}
        }]});
        let batch: ResultBatchInput = serde_json::from_value(body).unwrap();
        let results = batch.validate().unwrap();
        let result = &results[0];
        assert_eq!(result.id.as_ref().map(ResultId::as_str), Some("r-1"));
        assert_eq!(result.status, ResultStatus::Failed);
        assert_eq!(result.attempt.get(), 2);
        assert_eq!(result.duration_ms.map(DurationMs::get), Some(12));
        assert_eq!(
            result.started_at.map(|at| at.unix_timestamp()),
            Some(1_772_352_000)
        );
        assert_eq!(
            result.started_at.map(|at| at.offset()),
            Some(UtcOffset::UTC)
        );
        assert_eq!(
            result.message.as_ref().map(CappedText::as_str),
            Some("assert 1 == 2")
        );
        assert_eq!(result.attributes.get("browser"), Some("firefox"));
        assert_eq!(
            result.test_key(),
            TestKey::derive(result.suite.as_ref(), &result.name)
        );
    }

    #[test]
    fn a_minimal_result_defaults_to_the_first_attempt() {
        let result = input("works", "passed").validate("").unwrap();
        assert_eq!(result.attempt, Attempt::FIRST);
        assert_eq!(result.suite, None);
        assert!(result.attributes.is_empty());
    }

    #[test]
    fn an_empty_suite_is_no_suite() {
        let mut with_empty = input("t", "passed");
        with_empty.suite = Some(String::new());
        let result = with_empty.validate("").unwrap();
        assert_eq!(result.suite, None);
        assert_eq!(
            result.test_key(),
            input("t", "passed").validate("").unwrap().test_key()
        );
    }

    #[test]
    fn errors_name_the_field_by_its_index_and_the_limit() {
        let mut long = input(&"n".repeat(MAX_NAME_BYTES + 1), "passed");
        long.attempt = Some(0);
        let errors = batch(vec![input("ok", "passed"), input("ok", "PASS"), long])
            .validate()
            .unwrap_err();
        assert_eq!(
            fields(&errors),
            ["results[1].status", "results[2].name", "results[2].attempt"]
        );
        assert_eq!(
            errors.errors()[1].message,
            "must be at most 1024 bytes, got 1025"
        );
        assert!(errors.to_string().starts_with(
            "results[1].status: unknown status `PASS`: expected one of passed, failed, skipped, errored; "
        ));
    }

    #[test]
    fn every_identity_and_scalar_field_is_checked() {
        let bad = ResultInput {
            id: Some(String::new()),
            suite: Some("a\0b".to_owned()),
            name: " ".to_owned(),
            status: "failed".to_owned(),
            duration_ms: Some(u64::MAX),
            started_at: Some("yesterday".to_owned()),
            attempt: Some(101),
            ..ResultInput::default()
        };
        let errors = bad.validate("").unwrap_err();
        assert_eq!(
            fields(&errors),
            [
                "id",
                "suite",
                "name",
                "attempt",
                "duration_ms",
                "started_at"
            ]
        );
    }

    #[test]
    fn attribute_errors_name_the_offending_key() {
        let mut attributes: BTreeMap<String, String> = (0..=MAX_ATTRIBUTES)
            .map(|i| (format!("k{i}"), "v".to_owned()))
            .collect();
        attributes.insert("big".to_owned(), "v".repeat(2000));
        let mut with_attributes = input("t", "passed");
        with_attributes.attributes = Some(attributes);
        let errors = batch(vec![with_attributes]).validate().unwrap_err();
        assert_eq!(
            fields(&errors),
            ["results[0].attributes", "results[0].attributes.big"]
        );
        assert!(errors.errors()[0].message.contains("at most 64 entries"));
    }

    #[test]
    fn batches_outside_one_to_a_thousand_are_refused() {
        let errors = batch(vec![]).validate().unwrap_err();
        assert_eq!(
            errors.to_string(),
            "results: must hold between 1 and 1000 results, got 0"
        );
        let too_many = vec![input("t", "passed"); MAX_RESULTS_PER_BATCH + 1];
        assert!(batch(too_many).validate().is_err());
        let most = vec![input("t", "passed"); MAX_RESULTS_PER_BATCH];
        assert_eq!(
            batch(most).validate().map(|r| r.len()),
            Ok(MAX_RESULTS_PER_BATCH)
        );
    }

    #[test]
    fn a_hopeless_batch_reports_a_bounded_number_of_errors() {
        let errors = batch(vec![input("", "nope"); MAX_RESULTS_PER_BATCH])
            .validate()
            .unwrap_err();
        assert_eq!(errors.errors().len(), MAX_REPORTED_FIELD_ERRORS);
    }

    #[test]
    fn long_free_text_is_truncated_not_refused() {
        let mut long = input("t", "failed");
        long.message = Some("m".repeat(MAX_MESSAGE_BYTES * 2));
        long.trace = Some("t".repeat(MAX_TRACE_BYTES + 1));
        long.stdout = Some("o".repeat(MAX_OUTPUT_BYTES + 1));
        long.stderr = Some("e".repeat(MAX_OUTPUT_BYTES * 3));
        let result = long.validate("").unwrap();
        let len = |text: &Option<CappedText>| text.as_ref().map(|t| t.as_str().len());
        assert_eq!(len(&result.message), Some(MAX_MESSAGE_BYTES));
        assert_eq!(len(&result.trace), Some(MAX_TRACE_BYTES));
        assert_eq!(len(&result.stdout), Some(MAX_OUTPUT_BYTES));
        assert_eq!(len(&result.stderr), Some(MAX_OUTPUT_BYTES));
        assert!(result
            .message
            .as_ref()
            .is_some_and(|m| m.as_str().ends_with(" bytes]")));
    }

    proptest! {
        /// Whatever a client sends, validation either refuses it naming fields or
        /// produces a result within every limit.
        #[test]
        fn validation_never_panics_and_respects_the_limits(
            name in ".{0,20}",
            status in prop_oneof![Just("passed".to_owned()), Just("errored".to_owned()), ".{0,8}"],
            suite in proptest::option::of(".{0,20}"),
            attempt in proptest::option::of(any::<u32>()),
            message in proptest::option::of(".{0,50}"),
        ) {
            let candidate = ResultInput { name, status, suite, attempt, message, ..ResultInput::default() };
            match candidate.validate("results[0]") {
                Ok(result) => {
                    prop_assert!(result.name.as_str().len() <= MAX_NAME_BYTES);
                    prop_assert!(result.attempt.get() >= 1);
                }
                Err(errors) => {
                    prop_assert!(!errors.errors().is_empty());
                    prop_assert!(errors.errors().iter().all(|e| e.field.starts_with("results[0].")));
                }
            }
        }
    }
}
