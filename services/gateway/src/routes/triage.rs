//! Triage: failures by signature, new failures, quarantine, the test catalog, trends
//! and the slowest tests.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use verdict_contracts::page::{Page, PageRequest};
use verdict_contracts::runs::triage::{
    self, CatalogTest, FailureGroup, FailureSignature, ListFailures, ListTests, ProjectTrend,
    Quarantine, QuarantineRequest, QuarantineState, RunFailures, SetQuarantine, SignatureResults,
    SlowestTests, TestRef, TestStats, TestTrend, TrendDay, Window,
};
use verdict_contracts::runs::TestResult;
use verdict_contracts::system::Empty;

use super::runs::selection_of;
use crate::extract::QueryParams;
use crate::extract::{run_path, ApiJson, Authenticated};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// The slowest tests are ranked over fewer runs by default: every outcome of the window
/// is read.
const SLOWEST_WINDOW: Window = Window::Runs(10);
/// A project's trend covers a month by default.
const TREND_WINDOW: Window = Window::Days(30);

fn flag(query: &mut QueryParams, name: &str) -> Result<bool, ApiError> {
    match query.take(name).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::invalid(name, "must be true or false")),
    }
}

/// A project's failure signatures over a window of finished runs, most failures first.
#[utoipa::path(get, path = "/api/v1/projects/{project}/failures", operation_id = "list_failures", tag = "triage",
    security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"),
        ("window" = Option<String>, Query, description = "the latest N finished runs (1 to 500, default 50), or those of the last N days (`7d`, up to 366d)"),
        ("branch" = Option<String>, Query, description = "only runs whose `git.branch` attribute is this"),
        ("attr.{key}" = Option<String>, Query, description = "only runs with this attribute value; at most 16 filters"),
        PageRequest),
    responses((status = 200, description = "OK", body = Page<FailureSignature>), (status = 400, description = "Invalid", body = Problem),
        (status = 404, description = "No such project", body = Problem)))]
pub async fn list_failures(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(project): Path<String>,
    mut query: QueryParams,
) -> Result<Json<Page<FailureSignature>>, ApiError> {
    let page = query.page()?;
    let selection = selection_of(&mut query, Window::DEFAULT)?;
    query.finish()?;
    let request = ListFailures {
        project,
        selection,
        page,
    };
    state
        .answer(&triage::LIST_FAILURES, &request, &principal)
        .await
}

/// The failed results with one signature, newest run first.
#[utoipa::path(get, path = "/api/v1/projects/{project}/failures/{signature}", operation_id = "signature_results", tag = "triage",
    security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"), ("signature" = String, Path, description = "16 hex digits"), PageRequest),
    responses((status = 200, description = "OK", body = Page<TestResult>),
        (status = 404, description = "No such project or signature", body = Problem)))]
pub async fn signature_results(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((project, signature)): Path<(String, String)>,
    mut query: QueryParams,
) -> Result<Json<Page<TestResult>>, ApiError> {
    let page = query.page()?;
    query.finish()?;
    let request = SignatureResults {
        project,
        signature,
        page,
    };
    state
        .answer(&triage::SIGNATURE_RESULTS, &request, &principal)
        .await
}

/// A run's failures grouped by signature, most failures first. With `new=true` only its
/// new failures: of tests that passed in the previous finished run with the same
/// `baseline` attribute value (`git.branch` by default; the project's previous finished
/// run when the run has no such attribute), or with a signature first seen in this run.
#[utoipa::path(get, path = "/api/v1/runs/{run}/failures", operation_id = "run_failures", tag = "triage",
    security(("bearer" = [])),
    params(("run" = String, Path), ("new" = Option<bool>, Query, description = "only new failures"),
        ("baseline" = Option<String>, Query, description = "the run attribute naming the baseline, default `git.branch`"),
        PageRequest),
    responses((status = 200, description = "OK", body = Page<FailureGroup>), (status = 400, description = "Invalid", body = Problem),
        (status = 404, description = "No such run", body = Problem)))]
pub async fn run_failures(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(run_id): Path<String>,
    mut query: QueryParams,
) -> Result<Json<Page<FailureGroup>>, ApiError> {
    let page = query.page()?;
    let new_only = flag(&mut query, "new")?;
    let baseline = query.take("baseline");
    query.finish()?;
    let request = RunFailures {
        run_id: run_path(&run_id)?,
        new_only,
        baseline,
        page,
    };
    state
        .answer(&triage::RUN_FAILURES, &request, &principal)
        .await
}

/// Quarantine a test (maintainer or owner): it still runs and is recorded, but its
/// failures no longer fail runs (they are counted as `quarantined`). Kept in the audit
/// trail with who and when.
#[utoipa::path(put, path = "/api/v1/projects/{project}/tests/{test_key}/quarantine", operation_id = "set_quarantine", tag = "triage",
    security(("bearer" = [])), request_body = QuarantineRequest,
    params(("project" = String, Path, description = "id or slug"), ("test_key" = String, Path)),
    responses((status = 200, description = "Quarantined", body = Quarantine), (status = 400, description = "Invalid", body = Problem),
        (status = 403, description = "Role too low", body = Problem),
        (status = 404, description = "No such project or test", body = Problem)))]
pub async fn set_quarantine(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((project, test_key)): Path<(String, String)>,
    ApiJson(quarantine): ApiJson<QuarantineRequest>,
) -> Result<Json<Quarantine>, ApiError> {
    let request = SetQuarantine {
        project,
        test_key,
        quarantine,
    };
    state
        .answer(&triage::SET_QUARANTINE, &request, &principal)
        .await
}

/// Release a test from quarantine (maintainer or owner).
#[utoipa::path(delete, path = "/api/v1/projects/{project}/tests/{test_key}/quarantine", operation_id = "release_quarantine", tag = "triage",
    security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"), ("test_key" = String, Path)),
    responses((status = 204, description = "Released"), (status = 403, description = "Role too low", body = Problem),
        (status = 404, description = "No such project or test, or it is not quarantined", body = Problem)))]
pub async fn release_quarantine(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((project, test_key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let Empty {} = state
        .bus
        .request_as(
            &triage::RELEASE_QUARANTINE,
            &TestRef { project, test_key },
            &principal,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A test's quarantine (if any) and its audit trail, newest first (at most 100).
#[utoipa::path(get, path = "/api/v1/projects/{project}/tests/{test_key}/quarantine", operation_id = "get_quarantine", tag = "triage",
    security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"), ("test_key" = String, Path)),
    responses((status = 200, description = "OK", body = QuarantineState),
        (status = 404, description = "No such project or test", body = Problem)))]
pub async fn get_quarantine(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((project, test_key)): Path<(String, String)>,
) -> Result<Json<QuarantineState>, ApiError> {
    state
        .answer(
            &triage::GET_QUARANTINE,
            &TestRef { project, test_key },
            &principal,
        )
        .await
}

/// The project's tests, in the order they were first reported: each with its last
/// status, flake rate and p95 duration over its latest 50 runs, and its quarantine.
#[utoipa::path(get, path = "/api/v1/projects/{project}/tests", operation_id = "list_tests", tag = "triage",
    security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"),
        ("q" = Option<String>, Query, description = "text in the test's name or suite (at most 256 bytes, no control characters)"),
        ("quarantined" = Option<bool>, Query, description = "only quarantined tests"), PageRequest),
    responses((status = 200, description = "OK", body = Page<CatalogTest>), (status = 400, description = "Invalid", body = Problem),
        (status = 404, description = "No such project", body = Problem)))]
pub async fn list_tests(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(project): Path<String>,
    mut query: QueryParams,
) -> Result<Json<Page<CatalogTest>>, ApiError> {
    let page = query.page()?;
    let q = query.take("q");
    let quarantined = flag(&mut query, "quarantined")?;
    query.finish()?;
    let request = ListTests {
        project,
        q,
        quarantined,
        page,
    };
    state
        .answer(&triage::LIST_TESTS, &request, &principal)
        .await
}

/// The tests with the highest p95 duration over a window of finished runs (default the
/// latest 10), slowest first.
#[utoipa::path(get, path = "/api/v1/projects/{project}/tests/slowest", operation_id = "slowest_tests", tag = "triage",
    security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"),
        ("window" = Option<String>, Query, description = "the latest N finished runs (1 to 500, default 10), or those of the last N days (`7d`)"),
        ("branch" = Option<String>, Query, description = "only runs whose `git.branch` attribute is this"),
        ("attr.{key}" = Option<String>, Query, description = "only runs with this attribute value; at most 16 filters"),
        ("limit" = Option<u32>, Query, description = "how many tests, 1 to 500, default 50")),
    responses((status = 200, description = "OK", body = Vec<TestStats>), (status = 400, description = "Invalid", body = Problem),
        (status = 404, description = "No such project", body = Problem)))]
pub async fn slowest(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(project): Path<String>,
    mut query: QueryParams,
) -> Result<Json<Vec<TestStats>>, ApiError> {
    let limit = query.page()?;
    if limit.cursor.is_some() {
        return Err(ApiError::invalid(
            "cursor",
            "the slowest tests are one list; raise limit instead",
        ));
    }
    let selection = selection_of(&mut query, SLOWEST_WINDOW)?;
    query.finish()?;
    let request = SlowestTests {
        project,
        selection,
        limit: limit.limit,
    };
    state
        .answer(&triage::SLOWEST_TESTS, &request, &principal)
        .await
}

/// One test's pass rate and p50/p95 duration over a window of finished runs.
#[utoipa::path(get, path = "/api/v1/projects/{project}/tests/{test_key}/trend", operation_id = "test_trend", tag = "triage",
    security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"), ("test_key" = String, Path),
        ("window" = Option<String>, Query, description = "the latest N finished runs (1 to 500, default 50), or those of the last N days (`7d`)"),
        ("branch" = Option<String>, Query, description = "only runs whose `git.branch` attribute is this"),
        ("attr.{key}" = Option<String>, Query, description = "only runs with this attribute value; at most 16 filters")),
    responses((status = 200, description = "OK", body = TestStats), (status = 400, description = "Invalid", body = Problem),
        (status = 404, description = "No such project or test", body = Problem)))]
pub async fn test_trend(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((project, test_key)): Path<(String, String)>,
    mut query: QueryParams,
) -> Result<Json<TestStats>, ApiError> {
    let selection = selection_of(&mut query, Window::DEFAULT)?;
    query.finish()?;
    let request = TestTrend {
        project,
        test_key,
        selection,
    };
    state
        .answer(&triage::TEST_TREND, &request, &principal)
        .await
}

/// A project's finished runs per UTC day (default the last 30 days): how many, how many
/// passed, their mean duration; oldest day first.
#[utoipa::path(get, path = "/api/v1/projects/{project}/trend", operation_id = "project_trend", tag = "triage",
    security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"),
        ("window" = Option<String>, Query, description = "the last N days (`30d`, the default, up to 366d), or the latest N finished runs"),
        ("branch" = Option<String>, Query, description = "only runs whose `git.branch` attribute is this"),
        ("attr.{key}" = Option<String>, Query, description = "only runs with this attribute value; at most 16 filters")),
    responses((status = 200, description = "OK", body = Vec<TrendDay>), (status = 400, description = "Invalid", body = Problem),
        (status = 404, description = "No such project", body = Problem)))]
pub async fn project_trend(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(project): Path<String>,
    mut query: QueryParams,
) -> Result<Json<Vec<TrendDay>>, ApiError> {
    let selection = selection_of(&mut query, TREND_WINDOW)?;
    query.finish()?;
    let request = ProjectTrend { project, selection };
    state
        .answer(&triage::PROJECT_TREND, &request, &principal)
        .await
}
