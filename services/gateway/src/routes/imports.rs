//! Importing a report (JUnit, NUnit, xUnit.net or TRX XML, CTRF JSON), as a new run or
//! into an existing one. The report is kept as an artifact of that run (its bytes go to
//! the blob store, never over the bus); the runs service parses it from there.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use verdict_contracts::artifacts::{
    self, ArtifactRef, ContentType, DeclareArtifact, NewArtifact, Sha256Hex, UploadPart,
    UploadTarget,
};
use verdict_contracts::auth::{Principal, Role};
use verdict_contracts::idempotency::Keyed;
use verdict_contracts::runs::{
    self, CreateImport, CreatedImport, Import, ImportIntoRun, ImportRef, ReportKind, StartImport,
};

use crate::content_encoding::body_error;
use crate::extract::{Authenticated, IdempotencyKeyHeader, QueryParams, RunReporter};
use crate::problem::{ApiError, Problem};
use crate::routes::artifacts::blob_base;
use crate::state::AppState;

/// The report format from `Content-Type`.
fn kind(headers: &HeaderMap) -> Result<(ReportKind, &'static str), ApiError> {
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|mime| mime.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match mime.as_str() {
        "application/xml" | "text/xml" => Ok((ReportKind::Junit, "application/xml")),
        "application/json" => Ok((ReportKind::Ctrf, "application/json")),
        _ => Err(ApiError::UnsupportedMediaType(
            "application/xml (JUnit, NUnit, xUnit.net, TRX) or application/json (CTRF)",
        )),
    }
}

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
    let (format, content_type) = kind(&headers)?;
    let name = query.take("name");
    let attributes = query.attributes();
    query.finish()?;
    let report = spool(body).await?;
    let request = Keyed {
        request: CreateImport {
            project,
            name: name.unwrap_or_else(|| "imported report".to_owned()),
            attributes,
            format,
        },
        idempotency_key: key,
        body_sha256: Some(report.sha256.as_str().to_owned()),
    };
    let created = state
        .bus
        .request_as(&runs::CREATE_IMPORT, &request, &principal)
        .await?;
    let artifact_name = format!("report.{}", extension(format));
    let import = store_and_start(
        &state,
        &principal,
        created,
        report,
        artifact_name,
        content_type,
    )
    .await?;
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
    let (format, content_type) = kind(&headers)?;
    let report = spool(body).await?;
    let request = Keyed {
        request: ImportIntoRun { run_id, format },
        idempotency_key: key,
        body_sha256: Some(report.sha256.as_str().to_owned()),
    };
    let created = state
        .bus
        .request_as(&runs::IMPORT_INTO_RUN, &request, &principal)
        .await?;
    let artifact_name = format!("report-{}.{}", created.import.id, extension(format));
    let import = store_and_start(
        &state,
        &principal,
        created,
        report,
        artifact_name,
        content_type,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(import)))
}

fn extension(format: ReportKind) -> &'static str {
    match format {
        ReportKind::Junit => "xml",
        ReportKind::Ctrf => "json",
    }
}

/// Stores the report as an artifact of the import's run (of kind report) and queues the
/// import; an import whose report is stored already (a repeated request) is answered as
/// it is.
async fn store_and_start(
    state: &AppState,
    principal: &Principal,
    created: CreatedImport,
    report: Spooled,
    artifact_name: String,
    content_type: &'static str,
) -> Result<Import, ApiError> {
    if created.report_stored {
        return Ok(created.import);
    }
    let import = created.import;
    let artifact = NewArtifact {
        name: artifact_name
            .try_into()
            .map_err(|err: String| ApiError::BadRequest(err))?,
        content_type: ContentType::try_from(content_type.to_owned())
            .map_err(ApiError::BadRequest)?,
        size: report.size,
        sha256: report.sha256,
        result_id: None,
    };
    let declared = state
        .bus
        .request_as(
            &artifacts::DECLARE_REPORT,
            &Keyed::plain(DeclareArtifact {
                run_id: import.run_id.clone(),
                artifact,
            }),
            principal,
        )
        .await?;
    upload(state, report.file.path(), report.size, &declared.upload).await?;
    let artifact_id = declared.id;
    state
        .bus
        .request_as(
            &artifacts::COMPLETE,
            &ArtifactRef {
                artifact_id: artifact_id.clone(),
            },
            principal,
        )
        .await?;
    let start = StartImport {
        import_id: import.id,
        artifact_id,
    };
    Ok(state
        .bus
        .request_as(&runs::START_IMPORT, &start, principal)
        .await?)
}

/// Sends the spooled report to the blob store: in one PUT, or above the store's
/// multipart threshold in its parts, each the next `size` bytes of the file. The URLs
/// name the store's internal endpoint (the artifacts service signs them so for reports),
/// or the artifacts service's own blob server for the local-disk store.
async fn upload(
    state: &AppState,
    report: &std::path::Path,
    size: u64,
    target: &UploadTarget,
) -> Result<(), ApiError> {
    let whole = [UploadPart {
        number: 1,
        url: target.url.clone(),
        size,
    }];
    let parts = target.parts.as_deref().unwrap_or(&whole);
    let mut offset = 0;
    for part in parts {
        let url = if part.url.starts_with('/') {
            format!("{}{}", blob_base(state).await?, part.url)
        } else {
            part.url.clone()
        };
        let mut file = tokio::fs::File::open(report)
            .await
            .map_err(|err| ApiError::Upstream(format!("reading the spooled report: {err}")))?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|err| ApiError::Upstream(format!("reading the spooled report: {err}")))?;
        let mut request = state
            .blob_client
            .put(url)
            .header(header::CONTENT_LENGTH.as_str(), part.size)
            .body(reqwest::Body::wrap_stream(
                tokio_util::io::ReaderStream::new(file.take(part.size)),
            ));
        for (name, value) in &target.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        // reqwest's errors name the URL, whose query is a signature: never shown.
        let stored = request.send().await.map_err(|err| {
            ApiError::Upstream(format!("storing the report: {}", err.without_url()))
        })?;
        if !stored.status().is_success() {
            return Err(ApiError::Upstream(format!(
                "the blob store answered {} to part {} of the report",
                stored.status(),
                part.number
            )));
        }
        offset += part.size;
    }
    Ok(())
}

/// A report spooled to a temporary file, measured and hashed.
struct Spooled {
    file: tempfile::NamedTempFile,
    size: u64,
    sha256: Sha256Hex,
}

/// Streams the body to a temporary file, measuring and hashing it on the way; the route's
/// body limit bounds it (decompressed, when it came gzipped).
async fn spool(body: Body) -> Result<Spooled, ApiError> {
    let file = tempfile::NamedTempFile::new()
        .map_err(|err| ApiError::Upstream(format!("spooling the report: {err}")))?;
    let reopened = file
        .reopen()
        .map_err(|err| ApiError::Upstream(format!("spooling the report: {err}")))?;
    let mut out = tokio::fs::File::from_std(reopened);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| body_error(&err))?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        out.write_all(&chunk)
            .await
            .map_err(|err| ApiError::Upstream(format!("spooling the report: {err}")))?;
    }
    out.flush()
        .await
        .map_err(|err| ApiError::Upstream(format!("spooling the report: {err}")))?;
    if size == 0 {
        return Err(ApiError::BadRequest("the report is empty".into()));
    }
    Ok(Spooled {
        file,
        size,
        sha256: Sha256Hex::from_digest(&hasher.finalize()),
    })
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
    Ok(Json(
        state
            .bus
            .request_as(&runs::GET_IMPORT, &ImportRef { import_id }, &principal)
            .await?,
    ))
}
