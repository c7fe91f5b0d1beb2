//! Live view: the channels viewers subscribe to, the frames realtime sequences onto
//! `verdict.live.<kind>.<id>` (kept in the `VERDICT_LIVE` stream) and the WebSocket
//! protocol of `GET /api/v1/live` (API.md, "Live").
//!
//! A frame is stored exactly as the gateway sends it to a viewer, so a gateway forwards
//! the bytes it receives without decoding them; the channel's `seq` travels in a header.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::events::Event;
use crate::ids::{ProjectId, RunId};
use crate::operation::Operation;
use crate::runs::{Run, TestResult};
use crate::service::ServiceName::Realtime;

/// Header of a live frame: its `seq` on its channel.
pub const SEQ_HEADER: &str = "Verdict-Live-Seq";
/// Header of a live frame: the `VERDICT_EVENTS` sequence of the last event it covers.
/// Realtime replicas use it to publish each event once per channel, and to know where
/// to resume after a restart.
pub const SOURCE_HEADER: &str = "Verdict-Source-Seq";

/// The longest id a channel may name.
pub const MAX_CHANNEL_ID_LEN: usize = 64;

/// What a viewer watches: one run, or the runs of one project.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Run(RunId),
    Project(ProjectId),
}

impl Channel {
    /// Parses `run:<id>` or `project:<id>`; ids are what the API hands out (letters,
    /// digits, `-` and `_`), so they are safe as a subject token.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (kind, id) = text
            .split_once(':')
            .ok_or_else(|| format!("channel `{text}` is not `run:<id>` or `project:<id>`"))?;
        let valid_id = !id.is_empty()
            && id.len() <= MAX_CHANNEL_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_id {
            return Err(format!(
                "channel id must be 1 to {MAX_CHANNEL_ID_LEN} letters, digits, `-` or `_`"
            ));
        }
        // Only the form the API hands out, so that the channel a viewer is answered
        // with is the text it sent.
        fn canonical<T: std::str::FromStr + fmt::Display>(id: &str) -> Option<T> {
            id.parse::<T>()
                .ok()
                .filter(|parsed| parsed.to_string() == id)
        }
        match kind {
            "run" => canonical(id)
                .map(Channel::Run)
                .ok_or_else(|| format!("channel `{text}` names no run: run ids are UUIDs")),
            "project" => canonical(id)
                .map(Channel::Project)
                .ok_or_else(|| format!("channel `{text}` names no project: project ids are UUIDs")),
            _ => Err(format!(
                "channel `{text}` is not `run:<id>` or `project:<id>`"
            )),
        }
    }

    /// The subject its frames are published on (and stored under).
    pub fn subject(&self) -> String {
        match self {
            Channel::Run(id) => format!("verdict.live.run.{id}"),
            Channel::Project(id) => format!("verdict.live.project.{id}"),
        }
    }

    /// The subject its stored frames are republished on: what gateways subscribe to.
    pub fn view_subject(&self) -> String {
        match self {
            Channel::Run(id) => format!("verdict.view.run.{id}"),
            Channel::Project(id) => format!("verdict.view.project.{id}"),
        }
    }

    /// The channels an event is shown on. Per-test events go to the run's viewers only;
    /// project viewers see runs start, progress and end.
    pub fn of(event: &Event) -> Vec<Channel> {
        let (project_id, run_id) = event.scope();
        let run = Channel::Run(run_id);
        let project = Channel::Project(project_id);
        match event {
            Event::TestFinished { .. } | Event::ArtifactStored { .. } => vec![run],
            Event::RunStarted { .. }
            | Event::RunProgress { .. }
            | Event::RunFinished { .. }
            | Event::RunDeleted { .. }
            | Event::ImportDone { .. } => vec![run, project],
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Run(id) => write!(f, "run:{id}"),
            Channel::Project(id) => write!(f, "project:{id}"),
        }
    }
}

impl Serialize for Channel {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Channel::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One event on a channel, as stored in `VERDICT_LIVE` and sent to viewers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "event")]
pub struct Frame {
    pub channel: Channel,
    pub seq: u64,
    pub event: Event,
}

/// What a viewer needs to draw a channel before its events arrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Snapshot {
    Run(Box<RunSnapshot>),
    Project(ProjectSnapshot),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSnapshot {
    pub run: Run,
    /// Milliseconds since the run started, when it is still running.
    pub elapsed_ms: Option<u64>,
    /// The run's latest failed results, newest first (at most [`SNAPSHOT_FAILURES`]).
    pub failures: Vec<TestResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectSnapshot {
    /// The project's running runs, newest first (at most [`SNAPSHOT_RUNS`]).
    pub running: Vec<Run>,
}

/// How many failures a run snapshot lists.
pub const SNAPSHOT_FAILURES: u32 = 20;
/// How many running runs a project snapshot lists.
pub const SNAPSHOT_RUNS: u32 = 50;

/// A gateway starting a viewer's subscription (the principal in the request headers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribe {
    pub channel: Channel,
    /// The last `seq` the viewer has; it wants the frames after it.
    pub since: Option<u64>,
}

/// Where a viewer starts: the channel's state at `seq`, either as a snapshot or as the
/// frames after the viewer's `since` (raw JSON, ready to send). Frames with a `seq` above
/// `seq` follow live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub seq: u64,
    pub snapshot: Option<Snapshot>,
    #[serde(default)]
    pub frames: Vec<String>,
}

/// Checks the principal's access to the channel and answers where to start.
pub const SUBSCRIBE: Operation<Subscribe, Subscription> = Operation::query(Realtime, "subscribe");

/// What a viewer sends over the WebSocket: client input, so unknown fields are refused
/// (unlike bus messages, which ignore them).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientMessage {
    Auth {
        token: String,
    },
    Subscribe {
        channel: Channel,
        #[serde(default)]
        since: Option<u64>,
    },
    Unsubscribe {
        channel: Channel,
    },
    Ping,
}

/// What the gateway sends besides frames.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMessage<'a> {
    Subscribed {
        channel: &'a Channel,
        seq: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        snapshot: Option<&'a Snapshot>,
    },
    Lagged {
        channel: &'a Channel,
    },
    Error {
        code: &'a str,
        message: &'a str,
    },
    Pong,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_parse_from_their_display_form() {
        let run = format!("run:{}", RunId::generate());
        let project = format!("project:{}", ProjectId::generate());
        for text in [run.as_str(), project.as_str()] {
            assert_eq!(Channel::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn a_run_channel_names_a_run_id() {
        let error = Channel::parse("run:0192-abc_d").unwrap_err();
        assert!(error.contains("names no run"), "{error}");
        let upper = RunId::generate().to_string().to_uppercase();
        assert!(Channel::parse(&format!("run:{upper}")).is_err());
    }

    #[test]
    fn a_project_channel_names_a_project_id() {
        let error = Channel::parse("project:web").unwrap_err();
        assert!(error.contains("names no project"), "{error}");
    }

    #[test]
    fn channel_ids_cannot_inject_subject_tokens() {
        for text in [
            "run:a.b",
            "run:>",
            "run:*",
            "run: a",
            "run:",
            "user:1",
            "run",
            "project:a.b",
            "project:>",
        ] {
            assert!(Channel::parse(text).is_err(), "{text} was accepted");
        }
        let long = format!("project:{}", "a".repeat(MAX_CHANNEL_ID_LEN + 1));
        assert!(Channel::parse(&long).is_err());
    }

    #[test]
    fn channel_subjects_fall_under_the_live_stream() {
        let project_id = ProjectId::generate();
        let prefix = crate::streams::LIVE.subjects[0].trim_end_matches('>');
        for channel in [
            Channel::Run(RunId::generate()),
            Channel::Project(project_id),
        ] {
            assert!(channel.subject().starts_with(prefix));
        }
    }

    #[test]
    fn view_subjects_are_the_republished_copies_of_the_channel_subjects() {
        let project_id = ProjectId::generate();
        let (source, destination) = crate::streams::LIVE.republish.unwrap();
        let channel = Channel::Project(project_id);
        assert_eq!(
            channel
                .view_subject()
                .strip_prefix(destination.trim_end_matches('>')),
            channel.subject().strip_prefix(source.trim_end_matches('>'))
        );
    }

    #[test]
    fn per_test_events_reach_only_run_viewers() {
        let project_id = ProjectId::generate();
        let run_id = RunId::generate();
        let event = Event::TestFinished {
            project_id,
            run_id,
            tests: Vec::new(),
        };
        assert_eq!(Channel::of(&event), vec![Channel::Run(run_id)]);
        let event = Event::RunDeleted { project_id, run_id };
        assert_eq!(
            Channel::of(&event),
            vec![Channel::Run(run_id), Channel::Project(project_id)]
        );
    }

    #[test]
    fn frames_are_event_messages_of_the_protocol() {
        let project_id = ProjectId::generate();
        let run_id = RunId::generate();
        let frame = Frame {
            channel: Channel::Run(run_id),
            seq: 7,
            event: Event::RunDeleted { project_id, run_id },
        };
        let json = serde_json::to_value(&frame).unwrap();
        assert_eq!(json["type"], "event");
        assert_eq!(json["channel"], format!("run:{run_id}"));
        assert_eq!(json["seq"], 7);
        assert_eq!(json["event"]["kind"], "run.deleted");
        assert_eq!(serde_json::from_value::<Frame>(json).unwrap(), frame);
    }

    #[test]
    fn client_messages_decode_by_type() {
        let run_id = RunId::generate();
        let message: ClientMessage = serde_json::from_str(&format!(
            r#"{{"type":"subscribe","channel":"run:{run_id}","since":3}}"#
        ))
        .unwrap();
        assert_eq!(
            message,
            ClientMessage::Subscribe {
                channel: Channel::Run(run_id),
                since: Some(3)
            }
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"subscribe"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"shout"}"#).is_err());
    }
}
