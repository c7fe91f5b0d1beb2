//! Tasks: work one service owes because of what another did, kept in the `VERDICT_TASKS`
//! stream until the owing service has done it (see [`crate::streams::TASKS`]).

use serde::{Deserialize, Serialize};

use crate::ids::{ProjectId, RunId};

/// One task; its subject names the service that does it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Task {
    /// A run is gone: its artifacts (rows and blobs) go too.
    DeleteRunArtifacts {
        project_id: ProjectId,
        run_id: RunId,
    },
}

/// Every task of the artifacts service.
pub const ARTIFACTS_TASKS: &str = "verdict.task.artifacts.>";

impl Task {
    pub fn subject(&self) -> &'static str {
        match self {
            Task::DeleteRunArtifacts { .. } => "verdict.task.artifacts.delete_run",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_captured_by_its_services_filter() {
        let task = Task::DeleteRunArtifacts {
            project_id: ProjectId::generate(),
            run_id: RunId::generate(),
        };
        let filter = ARTIFACTS_TASKS.trim_end_matches('>');
        assert!(task.subject().starts_with(filter));
    }

    #[test]
    fn tasks_travel_as_tagged_json() {
        let task = Task::DeleteRunArtifacts {
            project_id: ProjectId::generate(),
            run_id: RunId::generate(),
        };
        let json = serde_json::to_value(&task).unwrap();
        assert_eq!(json["task"], "delete_run_artifacts");
        assert_eq!(serde_json::from_value::<Task>(json).unwrap(), task);
    }
}
