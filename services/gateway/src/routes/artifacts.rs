//! Artifacts: declare, complete, list, read, download. Bytes never pass through these
//! handlers except on the local-disk store, whose signed `/blobs/…` URLs the gateway
//! proxies to the artifacts service, streaming both ways, so clients see one origin.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::TryStreamExt;
use serde::Deserialize;
use verdict_contracts::artifacts::{
    self, Artifact, ArtifactNamePrefix, ArtifactRef, CompleteArtifactBatch, CompleteArtifactsOfRun,
    CompletedArtifactBatch, DeclareArtifact, DeclareArtifactBatch, DeclaredArtifact,
    DeclaredArtifactBatch, ListArtifacts, NewArtifact, NewArtifactBatch, UploadTarget,
    BLOB_PATH_PREFIX,
};
use verdict_contracts::idempotency::Keyed;
use verdict_contracts::page::{Page, PageRequest};
use verdict_contracts::system::Empty;

use crate::extract::{path_id, run_path, ApiJson, Authenticated, IdempotencyKeyHeader};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// How long `complete` may take: hashing 5 GiB read back from a store takes tens of
/// seconds.
const COMPLETE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
/// How long declaring a batch may take.
const DECLARE_BATCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The origin clients reach this API at: `VERDICT_PUBLIC_URL`, else the request's
/// `Host` (with `X-Forwarded-Proto` when a proxy in front terminates TLS).
fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.settings.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .map_or_else(|| state.settings.listen.to_string(), str::to_owned);
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// Makes a store's URL absolute: relative ones (local-disk store) live on this origin.
fn absolute(base: &str, url: String) -> String {
    if url.starts_with('/') {
        format!("{base}{url}")
    } else {
        url
    }
}

fn make_absolute(base: &str, target: &mut UploadTarget) {
    target.url = absolute(base, std::mem::take(&mut target.url));
    if let Some(parts) = &mut target.parts {
        for part in parts {
            part.url = absolute(base, std::mem::take(&mut part.url));
        }
    }
}

/// Declare an artifact of a run (reporter); answers where and how to upload its bytes.
#[utoipa::path(operation_id = "declare_artifact", post, path = "/api/v1/runs/{run}/artifacts", tag = "artifacts", security(("bearer" = [])), request_body = NewArtifact,
    params(("run" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "the same key and body within 24 h get the artifact first declared (its upload signed anew), another body 422")),
    responses((status = 201, description = "Declared; upload to `upload.url` (or each of `upload.parts`) with `upload.method` and exactly `upload.headers`", body = DeclaredArtifact),
        (status = 403, description = "The caller's role does not allow this", body = Problem),
        (status = 404, description = "Not found, or not visible to the caller", body = Problem),
        (status = 413, description = "Larger than the per-artifact limit, or over the project's quota", body = Problem),
        (status = 422, description = "The Idempotency-Key was used for another request", body = Problem)))]
pub async fn declare(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(run_id): Path<String>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewArtifact>,
) -> Result<(StatusCode, Json<DeclaredArtifact>), ApiError> {
    let request = Keyed::new(
        DeclareArtifact {
            run_id: run_path(&run_id)?,
            artifact: body,
        },
        key,
    );
    let mut declared = state
        .bus
        .request_as(&artifacts::DECLARE, &request, &principal)
        .await?;
    make_absolute(&public_base(&state, &headers), &mut declared.upload);
    Ok((StatusCode::CREATED, Json(declared)))
}

/// Declare up to 100 artifacts of a run at once (reporter), all or none; answers where
/// and how to upload each, in order. One request, so one write of the caller's rate
/// budget, however many artifacts it declares.
#[utoipa::path(operation_id = "declare_artifact_batch", post, path = "/api/v1/runs/{run}/artifacts/batch", tag = "artifacts", security(("bearer" = [])), request_body = NewArtifactBatch,
    params(("run" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "the same key and body within 24 h get the artifacts first declared (their uploads signed anew), another body 422")),
    responses((status = 201, description = "Declared; `items[i]` answers `artifacts[i]`: upload to its `upload.url` (or each of `upload.parts`) with `upload.method` and exactly `upload.headers`", body = DeclaredArtifactBatch),
        (status = 400, description = "Not 1 to 100 declarations, or one is invalid (the message names it, as `artifacts[3].name`); nothing is declared", body = Problem),
        (status = 403, description = "The caller's role does not allow this", body = Problem),
        (status = 404, description = "Not found, or not visible to the caller", body = Problem),
        (status = 413, description = "One artifact is larger than the per-artifact limit, or the batch's total is over the project's quota; nothing is declared", body = Problem),
        (status = 422, description = "The Idempotency-Key was used for another request", body = Problem)))]
pub async fn declare_batch(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(run_id): Path<String>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewArtifactBatch>,
) -> Result<(StatusCode, Json<DeclaredArtifactBatch>), ApiError> {
    let request = Keyed::new(
        DeclareArtifactBatch {
            run_id: run_path(&run_id)?,
            artifacts: body.artifacts,
        },
        key,
    );
    // A hundred large artifacts in S3 each start a multipart upload there first.
    let mut declared = state
        .bus
        .with_timeout(DECLARE_BATCH_TIMEOUT)
        .request_as(&artifacts::DECLARE_BATCH, &request, &principal)
        .await?;
    let base = public_base(&state, &headers);
    for item in &mut declared.items {
        make_absolute(&base, &mut item.upload);
    }
    Ok((StatusCode::CREATED, Json(declared)))
}

/// Verify the uploads of up to 100 artifacts of a run (reporter), each as
/// `POST /artifacts/{id}/complete` would; one artifact's failure is its own entry.
#[utoipa::path(operation_id = "complete_artifact_batch", post, path = "/api/v1/runs/{run}/artifacts/complete", tag = "artifacts", security(("bearer" = [])), request_body = CompleteArtifactBatch,
    params(("run" = String, Path)),
    responses((status = 200, description = "`items[i]` answers `ids[i]`: `status` 200 with the stored `artifact`, or 404 (not an artifact of this run), 409 (nothing uploaded yet) or 422 (the bytes do not match; they are deleted) with a `detail`", body = CompletedArtifactBatch),
        (status = 400, description = "Not 1 to 100 ids, or an id listed twice", body = Problem),
        (status = 403, description = "The caller's role does not allow this", body = Problem),
        (status = 404, description = "The run is not found, or not visible to the caller", body = Problem)))]
pub async fn complete_batch(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(run_id): Path<String>,
    ApiJson(body): ApiJson<CompleteArtifactBatch>,
) -> Result<Json<CompletedArtifactBatch>, ApiError> {
    let bus = state.bus.with_timeout(COMPLETE_TIMEOUT);
    let request = CompleteArtifactsOfRun {
        run_id: run_path(&run_id)?,
        ids: body.ids,
    };
    Ok(Json(
        bus.request_as(&artifacts::COMPLETE_BATCH, &request, &principal)
            .await?,
    ))
}

/// Verify the uploaded bytes against the declared size and sha256 (reporter). A
/// mismatch deletes the bytes and leaves the artifact pending.
#[utoipa::path(operation_id = "complete_artifact", post, path = "/api/v1/artifacts/{id}/complete", tag = "artifacts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "Stored (also when it already was)", body = Artifact),
        (status = 404, description = "Not found, or not visible to the caller", body = Problem),
        (status = 409, description = "Nothing has been uploaded yet", body = Problem),
        (status = 422, description = "The uploaded bytes do not match the declared size or sha256", body = Problem)))]
pub async fn complete(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(artifact_id): Path<String>,
) -> Result<Json<Artifact>, ApiError> {
    // Verification may read the whole blob back (gigabytes for a large artifact in
    // S3), so this request may take far longer than the bus's usual timeout.
    let bus = state.bus.with_timeout(COMPLETE_TIMEOUT);
    Ok(Json(
        bus.request_as(
            &artifacts::COMPLETE,
            &ArtifactRef {
                artifact_id: path_id(&artifact_id, "artifact not found")?,
            },
            &principal,
        )
        .await?,
    ))
}

/// The query of a run's artifact list.
#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<u32>,
    prefix: Option<String>,
}

/// A run's artifacts, oldest first; with `prefix`, those whose names start with it, in
/// name order (viewer).
#[utoipa::path(operation_id = "list_artifacts", get, path = "/api/v1/runs/{run}/artifacts", tag = "artifacts", security(("bearer" = [])),
    params(("run" = String, Path), PageRequest,
        ("prefix" = Option<String>, Query, description = "only names starting with this (`screens/`), listed in name order; a start of a valid name, at most 1024 bytes")),
    responses((status = 200, description = "OK", body = Page<Artifact>),
        (status = 400, description = "Invalid `prefix`, `limit` or `cursor`", body = Problem),
        (status = 404, description = "Not found, or not visible to the caller", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(run_id): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Page<Artifact>>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let prefix = query
        .prefix
        .map(ArtifactNamePrefix::try_from)
        .transpose()
        .map_err(|message| ApiError::invalid("prefix", &message))?;
    let page = PageRequest {
        cursor: query.cursor,
        limit: query.limit.unwrap_or(PageRequest::default().limit),
    };
    state
        .answer(
            &artifacts::LIST,
            &ListArtifacts {
                run_id: run_path(&run_id)?,
                page,
                prefix,
            },
            &principal,
        )
        .await
}

/// One artifact (viewer).
#[utoipa::path(operation_id = "get_artifact", get, path = "/api/v1/artifacts/{id}", tag = "artifacts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = Artifact), (status = 404, description = "Not found, or not visible to the caller", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(artifact_id): Path<String>,
) -> Result<Json<Artifact>, ApiError> {
    state
        .answer(
            &artifacts::GET,
            &ArtifactRef {
                artifact_id: path_id(&artifact_id, "artifact not found")?,
            },
            &principal,
        )
        .await
}

/// Redirect to a short-lived signed URL of the artifact's bytes (viewer). The bytes
/// are served as an attachment with `X-Content-Type-Options: nosniff`.
#[utoipa::path(operation_id = "download_artifact", get, path = "/api/v1/artifacts/{id}/download", tag = "artifacts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 302, description = "Found; `Location` is the signed URL"),
        (status = 404, description = "Not found, or not visible to the caller", body = Problem),
        (status = 409, description = "The upload has not been completed", body = Problem)))]
pub async fn download(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(artifact_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = state
        .bus
        .request_as(
            &artifacts::DOWNLOAD,
            &ArtifactRef {
                artifact_id: path_id(&artifact_id, "artifact not found")?,
            },
            &principal,
        )
        .await?;
    let location = absolute(&public_base(&state, &headers), target.url);
    let location = HeaderValue::from_str(&location)
        .map_err(|_| ApiError::Upstream("the blob store returned an unusable URL".into()))?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment"),
            ),
        ],
    )
        .into_response())
}

/// Where the artifacts service serves blobs, asked over the bus on every transfer (one
/// sub-millisecond request; always right after the service restarts on a new port).
pub(crate) async fn blob_base(state: &AppState) -> Result<String, ApiError> {
    let endpoint = state
        .bus
        .request(&artifacts::BLOB_ENDPOINT, &Empty {})
        .await?;
    endpoint
        .base_url
        .ok_or(ApiError::NotFound("no such resource"))
}

/// Response headers of the blob server passed on to the client.
const PASSED_ON: [header::HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_DISPOSITION,
    header::X_CONTENT_TYPE_OPTIONS,
    header::CONTENT_SECURITY_POLICY,
    header::CACHE_CONTROL,
];

fn relay(response: reqwest::Response) -> Response {
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    for name in PASSED_ON {
        if let Some(value) = response.headers().get(name.as_str()) {
            if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                headers.insert(name, value);
            }
        }
    }
    let body = Body::from_stream(response.bytes_stream());
    (status, headers, body).into_response()
}

/// Only the artifacts service's generated keys go upstream; anything else is unknown.
fn blob_url(base: &str, key: &str, query: Option<String>) -> Result<String, ApiError> {
    let valid = !key.is_empty()
        && key.len() <= 64
        && key.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if !valid {
        return Err(ApiError::NotFound("no such resource"));
    }
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    Ok(format!("{base}{BLOB_PATH_PREFIX}{key}{query}"))
}

/// A signed upload to the local-disk store, streamed through to the artifacts service.
pub async fn blob_put(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let url = blob_url(&blob_base(&state).await?, &key, query)?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut request = state
        .blob_client
        .put(url)
        .body(reqwest::Body::wrap_stream(stream));
    for name in [header::CONTENT_LENGTH, header::CONTENT_TYPE] {
        if let Some(value) = headers.get(&name) {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    Ok(relay(
        request.send().await.map_err(ApiError::upstream_request)?,
    ))
}

/// A signed download from the local-disk store, streamed through from the artifacts
/// service.
pub async fn blob_get(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let url = blob_url(&blob_base(&state).await?, &key, query)?;
    Ok(relay(
        state
            .blob_client
            .get(url)
            .send()
            .await
            .map_err(ApiError::upstream_request)?,
    ))
}
