//! Operations of the runs service, its ingest messages and its events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Counts, NewResult, ResultStatus, RunShard, RunStatus, ShardCounts, ShardRef};
use crate::idempotency::Keyed;
use crate::ids::{ArtifactId, ImportId, ProjectId, RunId};
use crate::page::{Page, PageRequest};
use crate::system::Empty;
use crate::{Operation, ServiceName};

/// A run as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    pub id: RunId,
    pub project_id: ProjectId,
    pub name: String,
    pub status: RunStatus,
    pub attributes: BTreeMap<String, String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub counts: Counts,
    /// The CI build the run stands for, when it was created with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_key: Option<String>,
    /// Its shards, once any joined or the build announced how many it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<ShardCounts>,
}

/// The body of `POST /projects/{project}/runs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewRun {
    pub name: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// RFC 3339; the time the service received the request when absent.
    #[serde(default)]
    pub started_at: Option<String>,
    /// Find or create: the project's run with this build key is answered (200) if there
    /// is one, else it is created (201) with this request's name, attributes and start.
    /// Parallel shards of one CI build give the same key and get the same run.
    /// 1 to 255 bytes, no control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_key: Option<String>,
    /// With `build_key`: the shard that joins the run (a CI job's name or index), 1 to
    /// 255 bytes. The run then finishes once every shard that joined has finished
    /// (`POST /runs/{run}/finish` with this `shard`). Joining again changes nothing; a
    /// shard that joins a finished run opens it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// With `build_key`: how many shards the build has (1 to 1000); the run finishes no
    /// sooner than that many have finished. The largest number announced counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRun {
    /// Project id or slug.
    pub project: String,
    pub run: NewRun,
}

/// The run a create (or a find by build key) answered with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedRun {
    pub run: Run,
    /// Whether this request created it (201) rather than found it (200).
    pub created: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRef {
    pub run_id: RunId,
}

/// Which run to snapshot, and how many of its latest failures to include.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRun {
    pub run_id: RunId,
    pub failures: u32,
}

/// A run and its latest failures, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunWithFailures {
    pub run: Run,
    pub failures: Vec<TestResult>,
}

/// A project's running runs, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningRuns {
    pub project_id: ProjectId,
    pub limit: u32,
}

/// Which project a run belongs to, for the gateway's and other services' scope checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunScope {
    pub run_id: RunId,
    pub project_id: ProjectId,
    pub status: RunStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRuns {
    pub project: String,
    pub status: Option<RunStatus>,
    /// `attr.<key>=<value>` filters; all must match.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// RFC 3339 bounds on `started_at`.
    pub since: Option<String>,
    pub until: Option<String>,
    #[serde(flatten)]
    pub page: PageRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListResults {
    pub run_id: RunId,
    pub status: Option<ResultStatus>,
    /// Words to find in the test name or the failure message.
    pub q: Option<String>,
    pub suite: Option<String>,
    /// Newest first, pages going back in time (a live snapshot's latest failures);
    /// arrival order otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub newest_first: bool,
    #[serde(flatten)]
    pub page: PageRequest,
}

/// A result as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestResult {
    pub id: String,
    pub run_id: RunId,
    pub test_key: String,
    pub suite: Option<String>,
    pub name: String,
    pub status: ResultStatus,
    pub attempt: u32,
    pub duration_ms: Option<u64>,
    pub started_at: Option<String>,
    pub message: Option<String>,
    pub trace: Option<String>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestHistory {
    pub project: String,
    pub test_key: String,
    #[serde(flatten)]
    pub page: PageRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    pub run_id: RunId,
    pub run_name: String,
    pub status: ResultStatus,
    pub duration_ms: Option<u64>,
    pub started_at: String,
    pub attributes: BTreeMap<String, String>,
    /// The message of the result that settled the test's outcome in that run (its
    /// latest attempt), such as why it failed.
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlakyTests {
    pub project: String,
    /// The window of finished runs to look at, and the attributes they must have.
    #[serde(flatten)]
    pub selection: super::triage::RunSelection,
    #[serde(flatten)]
    pub page: PageRequest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlakyTest {
    pub test_key: String,
    pub name: String,
    pub suite: Option<String>,
    /// Times the test's outcome changed between passed and failed across the window,
    /// plus runs in which it passed only on retry.
    pub flips: u32,
    /// Runs of the window the test appeared in.
    pub runs: u32,
    pub flake_rate: f64,
    pub last_seen: String,
}

/// The body of `POST /runs/{run}/finish`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FinishRun {
    /// RFC 3339; when the service applies the finish if absent.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Only `interrupted` may be given; otherwise the results decide.
    #[serde(default)]
    pub status: Option<RunStatus>,
    /// The shard that finished (the name it joined with). Without it, the whole run
    /// finishes, whatever its shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

/// What goes through the durable ingest stream, in order per run. It is read through
/// [`IngestEnvelope`], whose fields decode in any order without buffering the message
/// (as an internally tagged enum would).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", try_from = "IngestEnvelope")]
pub enum IngestMessage {
    /// Results the gateway checked; read back without checking again (see `wire.rs`).
    Results {
        project_id: ProjectId,
        run_id: RunId,
        results: Vec<NewResult>,
    },
    Finish {
        project_id: ProjectId,
        run_id: RunId,
        finish: FinishRun,
        /// When the gateway accepted the finish (RFC 3339).
        accepted_at: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum IngestKind {
    Results,
    Finish,
}

/// Every field an ingest message may have; [`IngestMessage`] is made from it.
#[derive(Deserialize)]
pub struct IngestEnvelope {
    #[serde(rename = "type")]
    kind: IngestKind,
    project_id: ProjectId,
    run_id: RunId,
    results: Option<Vec<NewResult>>,
    finish: Option<FinishRun>,
    accepted_at: Option<String>,
}

impl TryFrom<IngestEnvelope> for IngestMessage {
    type Error = &'static str;

    fn try_from(envelope: IngestEnvelope) -> Result<Self, Self::Error> {
        let IngestEnvelope {
            kind,
            project_id,
            run_id,
            results,
            finish,
            accepted_at,
        } = envelope;
        Ok(match kind {
            IngestKind::Results => IngestMessage::Results {
                project_id,
                run_id,
                results: results.ok_or("a results message without results")?,
            },
            IngestKind::Finish => IngestMessage::Finish {
                project_id,
                run_id,
                finish: finish.ok_or("a finish message without finish")?,
                accepted_at: accepted_at.ok_or("a finish message without accepted_at")?,
            },
        })
    }
}

/// `verdict.ingest.<project>.<run>`: ordered per run, consumed by the runs service.
pub fn ingest_subject(project_id: ProjectId, run_id: RunId) -> String {
    format!("verdict.ingest.{project_id}.{run_id}")
}

const RUNS: ServiceName = ServiceName::Runs;

pub const CREATE_RUN: Operation<Keyed<CreateRun>, CreatedRun> = Operation::new(RUNS, "create_run");
pub const GET_RUN: Operation<RunRef, Run> = Operation::query(RUNS, "get_run");
/// Internal: a run's project, without a principal (for scope checks by the gateway and
/// other services).
pub const RUN_SCOPE: Operation<RunRef, RunScope> = Operation::service_query(RUNS, "run_scope");
/// Internal: a run with its latest failures, newest first, for a live snapshot (the
/// caller checked the viewer's role).
pub const RUN_SNAPSHOT: Operation<SnapshotRun, RunWithFailures> =
    Operation::service_query(RUNS, "run_snapshot");
/// Internal: a project's running runs, newest first, for a live snapshot.
pub const RUNNING_RUNS: Operation<RunningRuns, Vec<Run>> =
    Operation::service_query(RUNS, "running_runs");
pub const LIST_RUNS: Operation<ListRuns, Page<Run>> = Operation::query(RUNS, "list_runs");
pub const LIST_RESULTS: Operation<ListResults, Page<TestResult>> =
    Operation::query(RUNS, "list_results");
pub const TEST_HISTORY: Operation<TestHistory, Page<HistoryEntry>> =
    Operation::query(RUNS, "test_history");
pub const FLAKY_TESTS: Operation<FlakyTests, Page<FlakyTest>> =
    Operation::query(RUNS, "flaky_tests");
pub const DELETE_RUN: Operation<RunRef, Empty> = Operation::new(RUNS, "delete_run");
pub const GET_SHARD: Operation<ShardRef, RunShard> = Operation::query(RUNS, "get_shard");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_subjects_fall_under_the_ingest_stream() {
        let subject = ingest_subject(ProjectId::generate(), RunId::generate());
        let stream = crate::streams::INGEST.subjects[0].trim_end_matches('>');
        assert!(subject.starts_with(stream), "{subject}");
    }

    #[test]
    fn ingest_messages_are_tagged_by_type() {
        let message = IngestMessage::Finish {
            project_id: ProjectId::generate(),
            run_id: RunId::generate(),
            finish: FinishRun {
                finished_at: None,
                status: None,
                shard: None,
            },
            accepted_at: "2026-11-25T00:00:00Z".into(),
        };
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(json["type"], "finish");
    }
}

/// The formats `POST /projects/{project}/imports` takes, by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    /// An XML report (`application/xml`, `text/xml`): JUnit, NUnit 2 or 3, xUnit.net
    /// v2 or TRX, told apart by the runs service from the content.
    Junit,
    /// CTRF JSON (`application/json`).
    Ctrf,
}

impl ReportKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            ReportKind::Junit => "junit",
            ReportKind::Ctrf => "ctrf",
        }
    }
}

impl std::str::FromStr for ReportKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "junit" => Ok(ReportKind::Junit),
            "ctrf" => Ok(ReportKind::Ctrf),
            other => Err(format!("unknown report kind `{other}`")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateImport {
    pub project: String,
    /// The run's name.
    pub name: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    pub format: ReportKind,
}

/// Where an import stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ImportState {
    Pending,
    Done,
    Failed,
}

impl ImportState {
    pub const fn as_str(self) -> &'static str {
        match self {
            ImportState::Pending => "pending",
            ImportState::Done => "done",
            ImportState::Failed => "failed",
        }
    }
}

impl std::str::FromStr for ImportState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(ImportState::Pending),
            "done" => Ok(ImportState::Done),
            "failed" => Ok(ImportState::Failed),
            other => Err(format!("unknown import state `{other}`")),
        }
    }
}

/// An import as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Import {
    pub id: ImportId,
    pub run_id: RunId,
    pub status: ImportState,
    /// Why it failed, naming the line and column or the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    /// What the import noticed in the report without refusing it, each naming its line
    /// and column: a test case without a name, counts without test cases, an unknown
    /// outcome. At most 100, the last saying how many more there were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
}

/// A report to import into an existing run: its results are added to the run's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportIntoRun {
    pub run_id: RunId,
    pub format: ReportKind,
}

/// A created (or, for a repeated `Idempotency-Key`, remembered) import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedImport {
    pub import: Import,
    /// Its report is stored and queued already (a repeat of a request that got that
    /// far): nothing is left to upload.
    pub report_stored: bool,
}

/// The report is stored (as the artifact); parse it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartImport {
    pub import_id: ImportId,
    pub artifact_id: ArtifactId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRef {
    pub import_id: ImportId,
}

/// Creates the run and a pending import, before the report is stored.
pub const CREATE_IMPORT: Operation<Keyed<CreateImport>, CreatedImport> =
    Operation::new(RUNS, "create_import");
/// Creates a pending import into an existing run, before the report is stored.
pub const IMPORT_INTO_RUN: Operation<Keyed<ImportIntoRun>, CreatedImport> =
    Operation::new(RUNS, "import_into_run");
/// Queues a pending import whose report is stored; answered once the queue entry is durable.
pub const START_IMPORT: Operation<StartImport, Import> = Operation::new(RUNS, "start_import");
pub const GET_IMPORT: Operation<ImportRef, Import> = Operation::query(RUNS, "get_import");
