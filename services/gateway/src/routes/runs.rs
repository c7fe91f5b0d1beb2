//! Runs and their results.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use verdict_contracts::idempotency::Keyed;
use verdict_contracts::page::{Page, PageRequest};
use verdict_contracts::runs::shards::{check_label, MAX_SHARD_BYTES};
use verdict_contracts::runs::triage::{RunSelection, Window, BRANCH_ATTRIBUTE};
use verdict_contracts::runs::{
    self, CreateRun, FinishRun, FlakyTest, FlakyTests, HistoryEntry, IngestMessage, ListResults,
    ListRuns, NewRun, ResultBatchInput, ResultId, Run, RunRef, RunShard, RunStatus, ShardRef,
    TestHistory, TestResult,
};
use verdict_contracts::system::Empty;

use crate::extract::{
    run_path, ApiJson, Authenticated, IdempotencyKeyHeader, QueryParams, RunReporter,
};
use crate::ingest::dedupe_id;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Start a run, or with `build_key` find the project's run of that CI build (creating it
/// if there is none) and join `shard` to it.
#[utoipa::path(post, path = "/api/v1/projects/{project}/runs", operation_id = "create_run", tag = "runs",
    security(("bearer" = [])), request_body = NewRun,
    params(("project" = String, Path, description = "id or slug"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; the same key and body within 24 h get the first answer, another body 422")),
    responses((status = 201, description = "Created", body = Run),
        (status = 200, description = "Found by `build_key` (the shard, if any, joined it)", body = Run),
        (status = 400, description = "Invalid", body = Problem),
        (status = 403, description = "Viewer", body = Problem), (status = 404, description = "No such project", body = Problem),
        (status = 409, description = "The run has as many shards as it takes (1000)", body = Problem),
        (status = 422, description = "The Idempotency-Key was used for another request", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(project): Path<String>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(run): ApiJson<NewRun>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    let request = Keyed::new(CreateRun { project, run }, key);
    let created = state
        .bus
        .request_as(&runs::CREATE_RUN, &request, &principal)
        .await?;
    let status = if created.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(created.run)))
}

/// One shard of a run: whether it finished.
#[utoipa::path(get, path = "/api/v1/runs/{run}/shards/{shard}", operation_id = "get_shard", tag = "runs",
    security(("bearer" = [])), params(("run" = String, Path), ("shard" = String, Path)),
    responses((status = 200, description = "OK", body = RunShard),
        (status = 404, description = "No such run, or no such shard of it", body = Problem)))]
pub async fn shard(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((run_id, shard)): Path<(String, String)>,
) -> Result<Json<RunShard>, ApiError> {
    state
        .answer(
            &runs::GET_SHARD,
            &ShardRef {
                run_id: run_path(&run_id)?,
                shard,
            },
            &principal,
        )
        .await
}

/// A project's runs, newest first.
#[utoipa::path(get, path = "/api/v1/projects/{project}/runs", operation_id = "list_runs", tag = "runs",
    security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"),
        ("status" = Option<RunStatus>, Query), ("since" = Option<String>, Query, description = "RFC 3339"),
        ("until" = Option<String>, Query, description = "RFC 3339"), PageRequest,
        ("attr.{key}" = Option<String>, Query, description = "attribute equals value; repeat for more, at most 16 filters (keys up to 128 bytes, values up to 1024)")),
    responses((status = 200, description = "OK", body = Page<Run>), (status = 404, description = "No such project", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(project): Path<String>,
    mut query: QueryParams,
) -> Result<Json<Page<Run>>, ApiError> {
    let page = query.page()?;
    let status = query.parse(
        "status",
        "must be one of running, passed, failed, interrupted",
    )?;
    let since = query.take("since");
    let until = query.take("until");
    let attributes = query.attributes();
    query.finish()?;
    let request = ListRuns {
        project,
        status,
        attributes,
        since,
        until,
        page,
    };
    state.answer(&runs::LIST_RUNS, &request, &principal).await
}

/// One run with its counters.
#[utoipa::path(get, path = "/api/v1/runs/{run}", operation_id = "get_run", tag = "runs", security(("bearer" = [])),
    params(("run" = String, Path)),
    responses((status = 200, description = "OK", body = Run), (status = 404, description = "No such run", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(run_id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    state
        .answer(
            &runs::GET_RUN,
            &RunRef {
                run_id: run_path(&run_id)?,
            },
            &principal,
        )
        .await
}

/// Delete a run, its results and its artifacts (maintainer or owner).
#[utoipa::path(delete, path = "/api/v1/runs/{run}", operation_id = "delete_run", tag = "runs", security(("bearer" = [])),
    params(("run" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Role too low", body = Problem),
        (status = 404, description = "No such run", body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(run_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let Empty {} = state
        .bus
        .request_as(
            &runs::DELETE_RUN,
            &RunRef {
                run_id: run_path(&run_id)?,
            },
            &principal,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Results stored durably; they become queryable within moments.
    pub accepted: usize,
}

/// Report results (1 to 1000). Answered once they are durable; a resend with the same
/// result ids (or the same `Idempotency-Key`, within two minutes) changes nothing. The
/// body may be sent with `Content-Encoding: gzip`; the body limit applies to it
/// decompressed.
#[utoipa::path(post, path = "/api/v1/runs/{run}/results", operation_id = "post_results", tag = "runs",
    security(("bearer" = [])), request_body = ResultBatchInput,
    params(("run" = String, Path),
        ("Content-Encoding" = Option<String>, Header, description = "`gzip`, or none")),
    responses((status = 202, description = "Accepted", body = Accepted),
        (status = 400, description = "Invalid; `errors` names each field (or the body is not valid gzip)", body = Problem),
        (status = 413, description = "Over the body limit (decompressed)", body = Problem),
        (status = 415, description = "Not JSON, or another Content-Encoding", body = Problem),
        (status = 403, description = "Role too low; checked before the body is read", body = Problem),
        (status = 404, description = "No such run", body = Problem)))]
pub async fn post_results(
    State(state): State<AppState>,
    RunReporter {
        principal,
        run_id,
        project_id,
    }: RunReporter,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(batch): ApiJson<ResultBatchInput>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let mut results = batch
        .validate()
        .map_err(|errors| ApiError::Validation(errors.into_errors()))?;
    let dedupe = dedupe_id(&principal, run_id, key.as_ref());
    for (index, result) in results.iter_mut().enumerate() {
        // Ids are settled here so that a redelivery stores the same results.
        if result.id.is_none() {
            let id = ResultId::parse(format!("{dedupe}.{index}")).map_err(|err| {
                ApiError::invalid(&format!("results[{index}].id"), &err.to_string())
            })?;
            result.id = Some(id);
        }
    }
    state
        .ingest
        .results(project_id, run_id, &results, &dedupe)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            accepted: results.len(),
        }),
    ))
}

/// Finish a run, or with `shard` one shard of it. Ordered after every result accepted
/// before it; the run ends once no import into it is still being read and, when shards
/// joined it, once every shard has finished (see `NewRun.shard`).
#[utoipa::path(post, path = "/api/v1/runs/{run}/finish", operation_id = "finish_run", tag = "runs",
    security(("bearer" = [])), request_body = FinishRun, params(("run" = String, Path)),
    responses((status = 202, description = "Accepted"), (status = 400, description = "Invalid", body = Problem),
        (status = 403, description = "Role too low; checked before the body is read", body = Problem),
        (status = 404, description = "No such run", body = Problem)))]
pub async fn finish(
    State(state): State<AppState>,
    RunReporter {
        principal,
        run_id,
        project_id,
    }: RunReporter,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(finish): ApiJson<FinishRun>,
) -> Result<StatusCode, ApiError> {
    if finish
        .status
        .is_some_and(|status| status != RunStatus::Interrupted)
    {
        return Err(ApiError::invalid(
            "status",
            "only interrupted may be given; results decide otherwise",
        ));
    }
    if let Some(shard) = &finish.shard {
        check_label(shard, MAX_SHARD_BYTES)
            .map_err(|reason| ApiError::invalid("shard", &reason))?;
    }
    if let Some(at) = &finish.finished_at {
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .map_err(|_| ApiError::invalid("finished_at", "must be an RFC 3339 time"))?;
    }
    let accepted_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let message = IngestMessage::Finish {
        project_id,
        run_id,
        finish,
        accepted_at,
    };
    let id = format!("{}-finish", dedupe_id(&principal, run_id, key.as_ref()));
    state
        .ingest
        .message(project_id, run_id, &message, &id)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// A run's results in the order they arrived.
#[utoipa::path(get, path = "/api/v1/runs/{run}/results", operation_id = "list_results", tag = "runs",
    security(("bearer" = [])),
    params(("run" = String, Path), ("status" = Option<runs::ResultStatus>, Query),
        ("q" = Option<String>, Query, description = "words in the test name or message, all required, the last as a prefix; at most 256 bytes and 16 words, no control characters"),
        ("suite" = Option<String>, Query, description = "at most 1024 bytes"), PageRequest),
    responses((status = 200, description = "OK", body = Page<TestResult>), (status = 404, description = "No such run", body = Problem)))]
pub async fn list_results(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(run_id): Path<String>,
    mut query: QueryParams,
) -> Result<Json<Page<TestResult>>, ApiError> {
    let page = query.page()?;
    let status = query.parse("status", "must be one of passed, failed, skipped, errored")?;
    let q = query.take("q");
    let suite = query.take("suite");
    query.finish()?;
    let request = ListResults {
        run_id: run_path(&run_id)?,
        status,
        q,
        suite,
        newest_first: false,
        page,
    };
    state
        .answer(&runs::LIST_RESULTS, &request, &principal)
        .await
}

/// A test's outcome in each run, newest first.
#[utoipa::path(get, path = "/api/v1/projects/{project}/tests/{test_key}/history", operation_id = "test_history",
    tag = "runs", security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"), ("test_key" = String, Path), PageRequest),
    responses((status = 200, description = "OK", body = Page<HistoryEntry>), (status = 404, description = "No such project", body = Problem)))]
pub async fn history(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((project, test_key)): Path<(String, String)>,
    mut query: QueryParams,
) -> Result<Json<Page<HistoryEntry>>, ApiError> {
    let page = query.page()?;
    query.finish()?;
    let request = TestHistory {
        project,
        test_key,
        page,
    };
    state
        .answer(&runs::TEST_HISTORY, &request, &principal)
        .await
}

/// Tests whose outcome flips across a window of finished runs, flakiest first.
#[utoipa::path(get, path = "/api/v1/projects/{project}/tests/flaky", operation_id = "flaky_tests", tag = "runs",
    security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"),
        ("window" = Option<String>, Query, description = "the latest N finished runs (1 to 500, default 50), or those of the last N days (`7d`, up to 366d)"),
        ("branch" = Option<String>, Query, description = "only runs whose `git.branch` attribute is this"),
        ("attr.{key}" = Option<String>, Query, description = "only runs with this attribute value; at most 16 filters"),
        PageRequest),
    responses((status = 200, description = "OK", body = Page<FlakyTest>), (status = 400, description = "Invalid", body = Problem),
        (status = 404, description = "No such project", body = Problem)))]
pub async fn flaky(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(project): Path<String>,
    mut query: QueryParams,
) -> Result<Json<Page<FlakyTest>>, ApiError> {
    let page = query.page()?;
    let selection = selection_of(&mut query, Window::DEFAULT)?;
    query.finish()?;
    let request = FlakyTests {
        project,
        selection,
        page,
    };
    state.answer(&runs::FLAKY_TESTS, &request, &principal).await
}

/// The window (`window`, default `default`) and the attribute filters (`attr.<key>`,
/// `branch`) of a view over a project's runs.
pub(crate) fn selection_of(
    query: &mut QueryParams,
    default: Window,
) -> Result<RunSelection, ApiError> {
    let window = match query.take("window") {
        Some(window) => window
            .parse()
            .map_err(|reason: String| ApiError::invalid("window", &reason))?,
        None => default,
    };
    let branch = query.take("branch");
    let mut attributes = query.attributes();
    if let Some(branch) = branch {
        attributes.insert(BRANCH_ATTRIBUTE.to_owned(), branch);
    }
    Ok(RunSelection { window, attributes })
}
