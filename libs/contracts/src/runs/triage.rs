//! Triage: failures grouped by signature, new failures, quarantine, trends and the test
//! catalog (issue #16).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{ResultStatus, TestResult};
use crate::ids::RunId;
use crate::page::{Page, PageRequest};
use crate::system::Empty;
use crate::{Operation, ServiceName};

/// The most runs a window spans.
pub const MAX_WINDOW_RUNS: u32 = 500;
/// The most days a window spans.
pub const MAX_WINDOW_DAYS: u32 = 366;
/// The longest quarantine reason, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;
/// The run attribute that names a run's branch.
pub const BRANCH_ATTRIBUTE: &str = "git.branch";

/// Which of a project's finished runs a view looks at: the latest `N`, or those started
/// in the last `N` days. Written `50` or `7d`; a bare number on the wire is runs, as
/// the flaky list's window always was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WindowWire", into = "String")]
pub enum Window {
    Runs(u32),
    Days(u32),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WindowWire {
    Runs(u32),
    Text(String),
}

impl TryFrom<WindowWire> for Window {
    type Error = String;

    fn try_from(wire: WindowWire) -> Result<Self, Self::Error> {
        match wire {
            WindowWire::Runs(runs) => runs.to_string().parse(),
            WindowWire::Text(text) => text.parse(),
        }
    }
}

impl From<Window> for String {
    fn from(window: Window) -> Self {
        window.to_string()
    }
}

impl Window {
    /// The latest 50 runs.
    pub const DEFAULT: Window = Window::Runs(50);
}

impl Default for Window {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl FromStr for Window {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (number, days) = match text.strip_suffix('d') {
            Some(number) => (number, true),
            None => (text, false),
        };
        let (limit, window): (u32, fn(u32) -> Window) = if days {
            (MAX_WINDOW_DAYS, Window::Days)
        } else {
            (MAX_WINDOW_RUNS, Window::Runs)
        };
        match number.parse::<u32>() {
            Ok(n) if (1..=limit).contains(&n) => Ok(window(n)),
            _ => Err(format!(
                "must be a number of runs from 1 to {MAX_WINDOW_RUNS}, or of days from 1d to {MAX_WINDOW_DAYS}d"
            )),
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Runs(n) => write!(f, "{n}"),
            Window::Days(n) => write!(f, "{n}d"),
        }
    }
}

/// The runs a project-wide view looks at: a window of finished runs whose attributes
/// match every filter (`branch=x` is `git.branch=x`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSelection {
    #[serde(default)]
    pub window: Window,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListFailures {
    pub project: String,
    #[serde(flatten)]
    pub selection: RunSelection,
    #[serde(flatten)]
    pub page: PageRequest,
}

/// One failure signature of a project across the window, most failures first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailureSignature {
    /// Opaque id of the signature (16 hex digits), stable across runs.
    pub signature: String,
    /// The normalised message the failures share: numbers, hex, UUIDs, times, temporary
    /// paths and addresses replaced by placeholders.
    pub pattern: String,
    /// The message of one failure with this signature.
    pub example: Option<String>,
    /// Failed or errored results with this signature in the window.
    pub failures: u64,
    /// Tests that failed with it in the window.
    pub tests: u64,
    /// Runs of the window in which it occurred.
    pub runs: u64,
    /// When a run in which it occurred started: its earliest ever, and its latest.
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFailures {
    pub run_id: RunId,
    /// Only the run's new failures: of tests that passed in the previous finished run of
    /// the same baseline, or with a signature first seen in this run.
    #[serde(default)]
    pub new_only: bool,
    /// The run attribute whose value names the baseline (`git.branch` by default).
    #[serde(default)]
    pub baseline: Option<String>,
    #[serde(flatten)]
    pub page: PageRequest,
}

/// One run's failures with one signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailureGroup {
    pub signature: String,
    pub pattern: String,
    pub example: Option<String>,
    /// Failed or errored results with this signature in the run (new ones only with
    /// `new=true`).
    pub failures: u64,
    /// Keys of the tests that failed with it (at most 100).
    pub test_keys: Vec<String>,
    /// The signature was first seen in this run.
    pub new_signature: bool,
    /// Tests among them that passed in the previous finished run of the baseline.
    pub regressions: u64,
    /// The previous finished run of the baseline, if there is one.
    pub baseline_run_id: Option<RunId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureResults {
    pub project: String,
    pub signature: String,
    #[serde(flatten)]
    pub page: PageRequest,
}

/// The body of `PUT /projects/{project}/tests/{test_key}/quarantine`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantineRequest {
    /// Why (1 to 1024 bytes).
    pub reason: String,
    /// RFC 3339; the quarantine ends by itself then. Until released when absent.
    #[serde(default)]
    pub until: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetQuarantine {
    pub project: String,
    pub test_key: String,
    pub quarantine: QuarantineRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestRef {
    pub project: String,
    pub test_key: String,
}

/// A test's quarantine: its failures do not fail runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quarantine {
    pub test_key: String,
    pub reason: String,
    pub until: Option<String>,
    /// Who quarantined it: `user:<id>` or `token:<id>`.
    pub by: String,
    pub at: String,
}

/// One entry of a test's quarantine audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantineEvent {
    /// `quarantined` or `released`.
    pub action: String,
    pub reason: Option<String>,
    pub until: Option<String>,
    pub by: String,
    pub at: String,
}

/// A test's quarantine now and its audit trail, newest first (at most 100 entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantineState {
    pub test_key: String,
    pub quarantine: Option<Quarantine>,
    pub audit: Vec<QuarantineEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListTests {
    pub project: String,
    /// Words in the test's name or suite.
    pub q: Option<String>,
    /// Only quarantined tests.
    #[serde(default)]
    pub quarantined: bool,
    #[serde(flatten)]
    pub page: PageRequest,
}

/// A test of the project's catalog, with its recent record (its latest 50 runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CatalogTest {
    pub test_key: String,
    pub name: String,
    pub suite: Option<String>,
    pub last_status: Option<ResultStatus>,
    pub last_run_at: Option<String>,
    /// Flips between passed and failed (and passes on retry) per run.
    pub flake_rate: f64,
    pub p95_duration_ms: Option<u64>,
    pub quarantine: Option<Quarantine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlowestTests {
    pub project: String,
    #[serde(flatten)]
    pub selection: RunSelection,
    pub limit: u32,
}

/// A test's durations and pass rate over a window of runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestStats {
    pub test_key: String,
    pub name: String,
    pub suite: Option<String>,
    /// Runs of the window the test ran in.
    pub runs: u64,
    pub passed: u64,
    pub pass_rate: f64,
    pub p50_duration_ms: Option<u64>,
    pub p95_duration_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestTrend {
    pub project: String,
    pub test_key: String,
    #[serde(flatten)]
    pub selection: RunSelection,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectTrend {
    pub project: String,
    #[serde(flatten)]
    pub selection: RunSelection,
}

/// A project's finished runs of one UTC day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrendDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub runs: u64,
    /// Runs that passed.
    pub passed: u64,
    pub pass_rate: f64,
    /// Mean of the runs' durations.
    pub mean_duration_ms: u64,
}

/// What a finished run brought that notifications tell of (`failure.new`,
/// `test.flaky`): at most 20 of its failure signatures first seen in it, most failures
/// first, and at most 20 keys of its flaky tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunNews {
    pub new_failures: Vec<FailureGroup>,
    pub flaky_tests: Vec<String>,
}

/// Who did something, for an audit trail.
pub fn actor(principal: &crate::auth::Principal) -> String {
    match principal {
        crate::auth::Principal::User { user_id, .. } => format!("user:{user_id}"),
        crate::auth::Principal::ApiToken { token_id, .. } => format!("token:{token_id}"),
    }
}

const RUNS: ServiceName = ServiceName::Runs;

pub const LIST_FAILURES: Operation<ListFailures, Page<FailureSignature>> =
    Operation::query(RUNS, "list_failures");
pub const RUN_FAILURES: Operation<RunFailures, Page<FailureGroup>> =
    Operation::query(RUNS, "run_failures");
/// Internal, no principal (notify): a finished run's news.
pub const RUN_NEWS: Operation<crate::runs::RunRef, RunNews> =
    Operation::service_query(RUNS, "run_news");
pub const SIGNATURE_RESULTS: Operation<SignatureResults, Page<TestResult>> =
    Operation::query(RUNS, "signature_results");
pub const SET_QUARANTINE: Operation<SetQuarantine, Quarantine> =
    Operation::new(RUNS, "set_quarantine");
pub const RELEASE_QUARANTINE: Operation<TestRef, Empty> =
    Operation::new(RUNS, "release_quarantine");
pub const GET_QUARANTINE: Operation<TestRef, QuarantineState> =
    Operation::query(RUNS, "get_quarantine");
pub const LIST_TESTS: Operation<ListTests, Page<CatalogTest>> =
    Operation::query(RUNS, "list_tests");
pub const SLOWEST_TESTS: Operation<SlowestTests, Vec<TestStats>> =
    Operation::query(RUNS, "slowest_tests");
pub const TEST_TREND: Operation<TestTrend, TestStats> = Operation::query(RUNS, "test_trend");
pub const PROJECT_TREND: Operation<ProjectTrend, Vec<TrendDay>> =
    Operation::query(RUNS, "project_trend");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_a_number_of_runs_or_of_days() {
        assert_eq!("50".parse(), Ok(Window::Runs(50)));
        assert_eq!("7d".parse(), Ok(Window::Days(7)));
        assert_eq!(Window::Days(7).to_string(), "7d");
    }

    #[test]
    fn a_window_travels_as_text_and_a_bare_number_is_runs() {
        let json = serde_json::to_value(Window::Days(7)).unwrap();
        assert_eq!(json, "7d");
        assert_eq!(
            serde_json::from_value::<Window>(serde_json::json!(30)).unwrap(),
            Window::Runs(30)
        );
    }

    #[test]
    fn a_window_out_of_range_or_malformed_is_refused() {
        for text in ["0", "501", "0d", "367d", "d", "7w", "-1", ""] {
            assert!(text.parse::<Window>().is_err(), "{text}");
        }
    }
}
