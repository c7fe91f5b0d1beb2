//! Importing a report (JUnit, NUnit, xUnit.net or TRX XML, CTRF JSON), as a new run or
//! into an existing one. The report is kept as an artifact of that run (its bytes go to
//! the blob store, never over the bus); the runs service parses it from there.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use verdict_contracts::auth::Role;
use verdict_contracts::runs::{self, Import, ImportRef};

use crate::extract::{path_id, Authenticated, IdempotencyKeyHeader, QueryParams, RunReporter};
use crate::problem::{ApiError, Problem};
use crate::report_import::{self, Destination};
use crate::state::AppState;

/// Import a report as a new run: answered once it is stored and queued; poll
/// `GET /imports/{id}`. The format is told by the content (the root element of XML:
/// JUnit, NUnit 2 or 3, xUnit.net v2, TRX; a CTRF JSON object); a report of no known
/// format fails the import, naming what the file holds.
#[utoipa::path(post, path = "/api/v1/projects/{project}/imports", operation_id = "create_import", tag = "runs",
    security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"), ("name" = Option<String>, Query, description = "the run's name"),
        ("attr.{key}" = Option<String>, Query, description = "run attribute; repeat for more"),
        ("Content-Encoding" = Option<String>, Header, description = "`gzip`, or none; the size limit applies decompressed"),
        ("Idempotency-Key" = Option<String>, Header, description = "the same key, query and report within 24 h get the first answer (nothing is imported twice), another request 422")),
    request_body(content = String, description = "JUnit, NUnit 2/3, xUnit.net v2 or TRX XML (application/xml), or CTRF JSON (application/json); the format is told by the content", content_type = "application/xml"),
    responses((status = 202, description = "Stored and queued", body = Import),
        (status = 400, description = "Invalid, or not valid gzip", body = Problem),
        (status = 413, description = "Over the report size limit", body = Problem),
        (status = 415, description = "Neither XML nor JSON", body = Problem),
        (status = 422, description = "The Idempotency-Key was used for another request", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(project): Path<String>,
    mut query: QueryParams,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Import>), ApiError> {
    // Before the report is read: a caller who may not import never makes the gateway
    // spool up to VERDICT_REPORT_LIMIT bytes.
    verdict_bus::access::authorize(&state.bus, &principal, &project, Role::Reporter)
        .await
        .map_err(|error| ApiError::Bus(verdict_bus::RequestError::Service(error)))?;
    let destination = Destination::NewRun {
        project,
        name: query
            .take("name")
            .unwrap_or_else(|| "imported report".to_owned()),
        attributes: query.attributes(),
    };
    query.finish()?;
    let import =
        report_import::import(&state, &principal, destination, key, &headers, body).await?;
    Ok((StatusCode::ACCEPTED, Json(import)))
}

/// Import a report into an existing run: its results are added to the run's (a finish
/// of the run waits until they are); poll `GET /imports/{id}`.
#[utoipa::path(post, path = "/api/v1/runs/{run}/imports", operation_id = "import_into_run", tag = "runs",
    security(("bearer" = [])),
    params(("run" = String, Path),
        ("Content-Encoding" = Option<String>, Header, description = "`gzip`, or none; the size limit applies decompressed"),
        ("Idempotency-Key" = Option<String>, Header, description = "the same key and report within 24 h get the first answer (nothing is imported twice), another request 422")),
    request_body(content = String, description = "JUnit, NUnit 2/3, xUnit.net v2 or TRX XML (application/xml), or CTRF JSON (application/json); the format is told by the content", content_type = "application/xml"),
    responses((status = 202, description = "Stored and queued", body = Import),
        (status = 400, description = "Invalid, or not valid gzip", body = Problem),
        (status = 403, description = "Role too low; checked before the report is read", body = Problem),
        (status = 404, description = "No such run", body = Problem),
        (status = 413, description = "Over the report size limit", body = Problem),
        (status = 415, description = "Neither XML nor JSON", body = Problem),
        (status = 422, description = "The Idempotency-Key was used for another request", body = Problem)))]
pub async fn into_run(
    State(state): State<AppState>,
    RunReporter {
        principal, run_id, ..
    }: RunReporter,
    query: QueryParams,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Import>), ApiError> {
    query.finish()?;
    let destination = Destination::Run { run_id };
    let import =
        report_import::import(&state, &principal, destination, key, &headers, body).await?;
    Ok((StatusCode::ACCEPTED, Json(import)))
}

/// Where an import stands: pending, done (with the counts, and the warnings: what the
/// import noticed in the report without refusing it) or failed (with the line and
/// column of the problem, or what the file holds instead of a report).
#[utoipa::path(get, path = "/api/v1/imports/{id}", operation_id = "get_import", tag = "runs", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = Import), (status = 404, description = "No such import", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(import_id): Path<String>,
) -> Result<Json<Import>, ApiError> {
    let import_id = path_id(&import_id, "import not found")?;
    state
        .answer(&runs::GET_IMPORT, &ImportRef { import_id }, &principal)
        .await
}
