//! During a rolling upgrade, services one version apart exchange messages, and messages
//! written by the old version wait in JetStream for the new one. Both directions must
//! decode: a message with one more optional field, and a message with one fewer.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use verdict_contracts::artifacts::{Artifact, DeclareArtifact};
use verdict_contracts::auth::{CreateProject, CreateUser, LoginAttempt, Principal};
use verdict_contracts::runs::{CreateRun, IngestMessage, ResultInput, Run};

/// A project id as the auth service hands them out.
const PROJECT_ID: &str = "0192a24d-d31a-7367-82da-f3e72998a5a6";

/// A run id as the runs service hands them out.
const RUN_ID: &str = "0192a24d-d31a-7367-82da-f3e72998a5a7";

/// Today's messages as they cross the bus, one of each kind that carries data.
fn todays_messages() -> Vec<(&'static str, Value)> {
    vec![
        (
            "ingest results",
            json!({"type": "results", "project_id": PROJECT_ID, "run_id": RUN_ID, "results": [
                {"id": "a", "suite": "s", "name": "t", "status": "failed", "duration_ms": 5,
                 "attempt": 1, "message": "boom", "attributes": {"os": "linux"}}]}),
        ),
        (
            "ingest finish",
            json!({"type": "finish", "project_id": PROJECT_ID, "run_id": RUN_ID,
                   "finish": {"status": "interrupted"}, "accepted_at": "2026-11-25T00:00:00Z"}),
        ),
        (
            "create run",
            json!({"project": "web", "run": {"name": "nightly", "attributes": {"branch": "main"}}}),
        ),
        (
            "run",
            json!({"id": RUN_ID, "project_id": PROJECT_ID, "name": "nightly", "status": "running",
                   "attributes": {}, "started_at": "2026-11-25T00:00:00Z", "finished_at": null,
                   "duration_ms": null, "counts": {"total": 1, "passed": 1, "failed": 0,
                   "skipped": 0, "errored": 0, "flaky": 0}}),
        ),
        (
            "declare artifact",
            json!({"run_id": RUN_ID, "artifact": {"name": "shot.png", "content_type": "image/png",
                   "size": 3, "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                   "result_id": "a"}}),
        ),
        (
            "artifact",
            json!({"id": "0192a24d-d31a-7367-82da-f3e72998a5b8", "run_id": RUN_ID, "result_id": null, "name": "shot.png",
                   "content_type": "image/png", "size": 3, "sha256": "ab", "state": "stored",
                   "created_at": "2026-11-25T00:00:00Z"}),
        ),
        (
            "login",
            json!({"email": "a@example.com", "password": "correct horse battery",
                   "client_address": "203.0.113.7"}),
        ),
        (
            "create user",
            json!({"email": "b@example.com", "name": "B", "password": "correct horse battery"}),
        ),
        ("create project", json!({"slug": "web", "name": "Web"})),
        (
            "principal",
            json!({"kind": "api_token", "token_id": "01a24dd3-1a36-742d-af3e-72998a5a73e1", "project_id": PROJECT_ID, "role": "reporter"}),
        ),
    ]
}

/// Decodes `message` as the type today's build uses for `kind`, and encodes it back.
fn roundtrip_today(kind: &str, message: Value) -> Result<Value, serde_json::Error> {
    fn through<T: DeserializeOwned + Serialize>(
        message: Value,
    ) -> Result<Value, serde_json::Error> {
        serde_json::to_value(serde_json::from_value::<T>(message)?)
    }
    match kind {
        "ingest results" | "ingest finish" => through::<IngestMessage>(message),
        "create run" => through::<CreateRun>(message),
        "run" => through::<Run>(message),
        "declare artifact" => through::<DeclareArtifact>(message),
        "artifact" => through::<Artifact>(message),
        "login" => through::<LoginAttempt>(message),
        "create user" => through::<CreateUser>(message),
        "create project" => through::<CreateProject>(message),
        "principal" => through::<Principal>(message),
        other => panic!("no type for {other}"),
    }
}

/// The message as a newer build writes it: every struct carries one more field
/// (`attributes` are free-form maps, not structs: a key there is data).
fn with_a_field_added_everywhere(message: &Value) -> Value {
    match message {
        Value::Object(fields) => {
            let mut fields: serde_json::Map<String, Value> = fields
                .iter()
                .map(|(key, value)| {
                    let value = if key == "attributes" {
                        value.clone()
                    } else {
                        with_a_field_added_everywhere(value)
                    };
                    (key.clone(), value)
                })
                .collect();
            fields.insert("added_in_next_version".into(), json!({"nested": [1, 2]}));
            Value::Object(fields)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(with_a_field_added_everywhere).collect())
        }
        other => other.clone(),
    }
}

#[test]
fn todays_types_decode_messages_from_a_newer_build_with_one_more_field() {
    for (kind, message) in todays_messages() {
        let expected = roundtrip_today(kind, message.clone()).unwrap();
        let newer = with_a_field_added_everywhere(&message);
        let decoded = roundtrip_today(kind, newer)
            .unwrap_or_else(|err| panic!("{kind}: a newer message is refused: {err}"));
        assert_eq!(decoded, expected, "{kind}");
    }
}

#[test]
fn todays_types_decode_messages_from_an_older_build_without_an_optional_field() {
    let older = [
        ("ingest results", "/results/0/attributes"),
        ("create run", "/run/attributes"),
        ("declare artifact", "/artifact/result_id"),
        ("run", "/duration_ms"),
        ("artifact", "/result_id"),
        ("login", "/client_address"),
    ];
    let messages: BTreeMap<_, _> = todays_messages().into_iter().collect();
    for (kind, pointer) in older {
        let mut message = messages[kind].clone();
        let (parent, field) = pointer.rsplit_once('/').unwrap();
        message
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .and_then(|object| object.remove(field))
            .unwrap_or_else(|| panic!("{kind} has no {pointer}"));
        roundtrip_today(kind, message)
            .unwrap_or_else(|err| panic!("{kind} without {pointer} is refused: {err}"));
    }
}

/// A result as a newer build may define it: one optional field more.
#[derive(Debug, Deserialize, Serialize)]
struct NextResultInput {
    id: Option<String>,
    suite: Option<String>,
    name: String,
    status: String,
    duration_ms: Option<u64>,
    attempt: Option<u32>,
    message: Option<String>,
    attributes: Option<BTreeMap<String, String>>,
    retried_from: Option<String>,
}

/// A result as an older build defined it: without `attributes`.
#[derive(Debug, Deserialize, Serialize)]
struct OlderResultInput {
    id: Option<String>,
    suite: Option<String>,
    name: String,
    status: String,
    duration_ms: Option<u64>,
    attempt: Option<u32>,
    message: Option<String>,
}

fn todays_result() -> ResultInput {
    ResultInput {
        id: Some("a".into()),
        name: "t".into(),
        status: "failed".into(),
        message: Some("boom".into()),
        attributes: Some([("os".to_owned(), "linux".to_owned())].into()),
        ..ResultInput::default()
    }
}

#[test]
fn a_newer_build_with_one_more_optional_field_reads_todays_results_and_writes_ones_today_reads() {
    let encoded = serde_json::to_vec(&todays_result()).unwrap();
    let next: NextResultInput = serde_json::from_slice(&encoded).unwrap();
    assert_eq!(next.retried_from, None);
    assert_eq!(next.attributes, todays_result().attributes);

    let next = NextResultInput {
        retried_from: Some("z".into()),
        ..next
    };
    let today: ResultInput = serde_json::from_slice(&serde_json::to_vec(&next).unwrap()).unwrap();
    assert_eq!(today, todays_result());
}

#[test]
fn an_older_build_with_one_field_fewer_reads_todays_results_and_writes_ones_today_reads() {
    let encoded = serde_json::to_vec(&todays_result()).unwrap();
    let older: OlderResultInput = serde_json::from_slice(&encoded).unwrap();
    assert_eq!(older.message.as_deref(), Some("boom"));

    let today: ResultInput = serde_json::from_slice(&serde_json::to_vec(&older).unwrap()).unwrap();
    assert_eq!(
        today,
        ResultInput {
            attributes: None,
            ..todays_result()
        }
    );
}
