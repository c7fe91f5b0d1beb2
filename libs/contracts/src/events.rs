//! Events: `verdict.ev.<project>.<run>.<kind>`, kept in the `VERDICT_EVENTS` stream for
//! live viewers and for services that react to what happened to a run.

use serde::{Deserialize, Serialize};

use crate::ids::{ArtifactId, ImportId, ProjectId, RunId};
use crate::runs::{Counts, ImportState, ResultStatus, RunStatus};

/// The largest event a producer publishes, in bytes of JSON. nats-server's default
/// `max_payload` is 1 MiB (`verdict up` sets 8 MiB) and realtime wraps each event in a
/// frame with headers, so producers split larger ones (a `test.finished` of many tests
/// becomes several) well below either.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// What happened. The names are the `<kind>` part of the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    RunStarted,
    TestFinished,
    RunProgress,
    RunFinished,
    /// A run and its results are gone; services holding data of it delete theirs.
    RunDeleted,
    ArtifactStored,
    ImportDone,
}

impl EventKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::RunStarted => "run.started",
            EventKind::TestFinished => "test.finished",
            EventKind::RunProgress => "run.progress",
            EventKind::RunFinished => "run.finished",
            EventKind::RunDeleted => "run.deleted",
            EventKind::ArtifactStored => "artifact.stored",
            EventKind::ImportDone => "import.done",
        }
    }
}

/// The subject of one event.
pub fn subject(project_id: ProjectId, run_id: RunId, kind: EventKind) -> String {
    format!("verdict.ev.{project_id}.{run_id}.{}", kind.as_str())
}

/// A filter matching one kind of event in every project and run.
pub fn kind_filter(kind: EventKind) -> String {
    format!("verdict.ev.*.*.{}", kind.as_str())
}

/// A filter matching every event of one run.
pub fn run_filter(project_id: ProjectId, run_id: RunId) -> String {
    format!("verdict.ev.{project_id}.{run_id}.>")
}

/// The payload of every event: which run, and what is known of it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Event {
    #[serde(rename = "run.started")]
    RunStarted {
        project_id: ProjectId,
        run_id: RunId,
        name: String,
        started_at: String,
    },
    /// One batch of results applied; `tests` are the results of that batch.
    #[serde(rename = "test.finished")]
    TestFinished {
        project_id: ProjectId,
        run_id: RunId,
        tests: Vec<FinishedTest>,
    },
    #[serde(rename = "run.progress")]
    RunProgress {
        project_id: ProjectId,
        run_id: RunId,
        status: RunStatus,
        counts: Counts,
    },
    #[serde(rename = "run.finished")]
    RunFinished {
        project_id: ProjectId,
        run_id: RunId,
        status: RunStatus,
        counts: Counts,
        finished_at: String,
    },
    #[serde(rename = "run.deleted")]
    RunDeleted {
        project_id: ProjectId,
        run_id: RunId,
    },
    #[serde(rename = "artifact.stored")]
    ArtifactStored {
        project_id: ProjectId,
        run_id: RunId,
        artifact_id: ArtifactId,
        name: String,
        size: u64,
    },
    #[serde(rename = "import.done")]
    ImportDone {
        project_id: ProjectId,
        run_id: RunId,
        import_id: ImportId,
        /// `done` or `failed`.
        status: ImportState,
    },
}

impl Event {
    /// The project and run the event is about.
    pub fn scope(&self) -> (ProjectId, RunId) {
        match self {
            Event::RunStarted {
                project_id, run_id, ..
            }
            | Event::TestFinished {
                project_id, run_id, ..
            }
            | Event::RunProgress {
                project_id, run_id, ..
            }
            | Event::RunFinished {
                project_id, run_id, ..
            }
            | Event::RunDeleted { project_id, run_id }
            | Event::ArtifactStored {
                project_id, run_id, ..
            }
            | Event::ImportDone {
                project_id, run_id, ..
            } => (*project_id, *run_id),
        }
    }

    pub fn kind(&self) -> EventKind {
        match self {
            Event::RunStarted { .. } => EventKind::RunStarted,
            Event::TestFinished { .. } => EventKind::TestFinished,
            Event::RunProgress { .. } => EventKind::RunProgress,
            Event::RunFinished { .. } => EventKind::RunFinished,
            Event::RunDeleted { .. } => EventKind::RunDeleted,
            Event::ArtifactStored { .. } => EventKind::ArtifactStored,
            Event::ImportDone { .. } => EventKind::ImportDone,
        }
    }

    /// The subject this event is published on.
    pub fn subject(&self) -> String {
        let (project_id, run_id) = self.scope();
        subject(project_id, run_id, self.kind())
    }
}

/// One result in a `test.finished` event: enough for a live view, not the full record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedTest {
    pub id: String,
    pub test_key: String,
    pub suite: Option<String>,
    pub name: String,
    pub status: ResultStatus,
    pub attempt: u32,
    pub duration_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_subjects_fall_under_the_events_stream() {
        let (project_id, run_id) = (ProjectId::generate(), RunId::generate());
        let subject = subject(project_id, run_id, EventKind::RunDeleted);
        assert_eq!(
            subject,
            format!("verdict.ev.{project_id}.{run_id}.run.deleted")
        );
        assert!(subject.starts_with(crate::streams::EVENTS.subjects[0].trim_end_matches('>')));
    }

    #[test]
    fn the_kind_filter_matches_the_subject_shape() {
        assert_eq!(
            kind_filter(EventKind::RunDeleted),
            "verdict.ev.*.*.run.deleted"
        );
    }

    #[test]
    fn events_carry_their_kind_in_the_payload() {
        let event = Event::RunDeleted {
            project_id: ProjectId::generate(),
            run_id: RunId::generate(),
        };
        assert_eq!(serde_json::to_value(&event).unwrap()["kind"], "run.deleted");
    }
}
