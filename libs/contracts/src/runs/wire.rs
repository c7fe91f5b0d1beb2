//! A checked result on the ingest stream. The gateway checks each result once, into a
//! [`NewResult`], and publishes it in the JSON shape of a [`ResultInput`](super::ResultInput)
//! (so a runs service of the previous version still reads it); the runs service reads it
//! back into a `NewResult` without checking it again. Only the gateway publishes on the
//! ingest stream, which is why trusting it is sound; nothing read from a client may be
//! decoded this way.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::{
    Attempt, Attributes, CappedText, DurationMs, NewResult, ResultId, ResultStatus, SuiteName,
    TestName,
};

#[derive(Serialize)]
struct Outgoing<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suite: Option<&'a str>,
    name: &'a str,
    status: ResultStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes: Option<&'a BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Incoming {
    id: Option<String>,
    suite: Option<String>,
    name: String,
    status: ResultStatus,
    duration_ms: Option<u64>,
    started_at: Option<String>,
    attempt: Option<u32>,
    message: Option<String>,
    trace: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    attributes: Option<BTreeMap<String, String>>,
}

impl Serialize for NewResult {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let started_at = match self.started_at {
            Some(at) => Some(at.format(&Rfc3339).map_err(serde::ser::Error::custom)?),
            None => None,
        };
        Outgoing {
            id: self.id.as_ref().map(ResultId::as_str),
            suite: self.suite.as_ref().map(SuiteName::as_str),
            name: self.name.as_str(),
            status: self.status,
            duration_ms: self.duration_ms.map(DurationMs::get),
            started_at,
            attempt: self.attempt.get(),
            message: self.message.as_ref().map(CappedText::as_str),
            trace: self.trace.as_ref().map(CappedText::as_str),
            stdout: self.stdout.as_ref().map(CappedText::as_str),
            stderr: self.stderr.as_ref().map(CappedText::as_str),
            attributes: (!self.attributes.is_empty()).then(|| self.attributes.as_map()),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for NewResult {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Incoming::deserialize(deserializer)?;
        let started_at = match wire.started_at {
            Some(text) => Some(
                OffsetDateTime::parse(&text, &Rfc3339)
                    .map_err(serde::de::Error::custom)?
                    .to_offset(UtcOffset::UTC),
            ),
            None => None,
        };
        Ok(NewResult {
            id: wire.id.map(ResultId::checked),
            suite: wire.suite.map(SuiteName::checked),
            name: TestName::checked(wire.name),
            status: wire.status,
            attempt: Attempt::checked(wire.attempt.unwrap_or(1)),
            duration_ms: wire.duration_ms.map(DurationMs::checked),
            started_at,
            message: wire.message.map(CappedText::checked),
            trace: wire.trace.map(CappedText::checked),
            stdout: wire.stdout.map(CappedText::checked),
            stderr: wire.stderr.map(CappedText::checked),
            attributes: Attributes::checked(wire.attributes.unwrap_or_default()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::ResultInput;
    use super::*;

    fn checked_result() -> NewResult {
        ResultInput {
            id: Some("r-1".into()),
            suite: Some("math".into()),
            name: "adds".into(),
            status: "failed".into(),
            duration_ms: Some(12),
            started_at: Some("2026-11-25T10:00:00+02:00".into()),
            attempt: Some(2),
            message: Some("expected 2".into()),
            trace: Some("at adds".into()),
            stdout: Some("out".into()),
            stderr: Some("err".into()),
            attributes: Some([("os".to_owned(), "linux".to_owned())].into()),
        }
        .validate("")
        .unwrap()
    }

    #[test]
    fn a_checked_result_reads_back_as_the_same_result() {
        let result = checked_result();
        let json = serde_json::to_vec(&result).unwrap();
        assert_eq!(serde_json::from_slice::<NewResult>(&json).unwrap(), result);
    }

    #[test]
    fn a_checked_result_on_the_wire_is_a_valid_client_result_with_its_time_in_utc() {
        let json = serde_json::to_vec(&checked_result()).unwrap();
        let input: ResultInput = serde_json::from_slice(&json).unwrap();
        assert_eq!(input.started_at.as_deref(), Some("2026-11-25T08:00:00Z"));
        assert_eq!(input.validate("").unwrap(), checked_result());
    }

    #[test]
    fn a_result_published_by_the_previous_gateway_reads_as_a_checked_result() {
        let previous = serde_json::json!({
            "name": "adds", "status": "passed", "attempt": 1, "id": "r-2",
        });
        let result: NewResult = serde_json::from_value(previous).unwrap();
        assert_eq!(result.name.as_str(), "adds");
        assert_eq!(result.status, ResultStatus::Passed);
        assert_eq!(result.attempt, Attempt::FIRST);
    }
}
