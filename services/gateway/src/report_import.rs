//! Importing a report, the steps between an accepted request and a queued import:
//! spool the body (measured and hashed), create the import (runs), declare the report
//! as an artifact of the import's run, upload it to the blob store, complete the
//! artifact, start the import. The routes in `routes::imports` only decode and check.
//!
//! A repeated request (same Idempotency-Key and report) resumes at the first step not
//! yet done. When a step fails, the spooled report is removed at once, and the import
//! the request created is logged as left pending with the step that failed: the
//! artifact it declared is swept after VERDICT_ARTIFACTS_UPLOAD_GRACE.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use verdict_contracts::artifacts::{
    self, ArtifactRef, ContentType, DeclareArtifact, NewArtifact, Sha256Hex, UploadPart,
    UploadTarget,
};
use verdict_contracts::auth::Principal;
use verdict_contracts::idempotency::{IdempotencyKey, Keyed};
use verdict_contracts::ids::RunId;
use verdict_contracts::runs::{
    self, CreateImport, CreatedImport, Import, ImportIntoRun, ReportKind, StartImport,
};

use crate::content_encoding::body_error;
use crate::problem::ApiError;
use crate::routes::artifacts::blob_base;
use crate::state::AppState;

/// Where an imported report's results go.
pub enum Destination {
    /// A new run of `project`.
    NewRun {
        project: String,
        name: String,
        attributes: BTreeMap<String, String>,
    },
    /// An existing run, checked already to accept the caller's results.
    Run { run_id: RunId },
}

/// Imports the report in `body`, typed by `headers`, into `destination`.
pub async fn import(
    state: &AppState,
    principal: &Principal,
    destination: Destination,
    idempotency_key: Option<IdempotencyKey>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Import, ApiError> {
    let (format, content_type) = kind(headers)?;
    let into_run = matches!(destination, Destination::Run { .. });
    let report = spool(body).await?;
    let body_sha256 = Some(report.sha256.as_str().to_owned());
    let created = match destination {
        Destination::NewRun {
            project,
            name,
            attributes,
        } => {
            let request = Keyed {
                request: CreateImport {
                    project,
                    name,
                    attributes,
                    format,
                },
                idempotency_key,
                body_sha256,
            };
            state
                .bus
                .request_as(&runs::CREATE_IMPORT, &request, principal)
                .await
        }
        Destination::Run { run_id } => {
            let request = Keyed {
                request: ImportIntoRun { run_id, format },
                idempotency_key,
                body_sha256,
            };
            state
                .bus
                .request_as(&runs::IMPORT_INTO_RUN, &request, principal)
                .await
        }
    };
    let created = match created {
        Ok(created) => created,
        Err(err) => {
            report.discard();
            return Err(err.into());
        }
    };
    let import_id = created.import.id;
    let artifact_name = if into_run {
        format!("report-{import_id}.{}", extension(format))
    } else {
        format!("report.{}", extension(format))
    };
    let stored = store_and_start(
        state,
        principal,
        created,
        &report,
        artifact_name,
        content_type,
    )
    .await;
    report.discard();
    stored.map_err(|(step, err)| {
        tracing::warn!(import = %import_id, step, error = %err, "an import stays pending: its report could not be stored");
        err
    })
}

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

fn extension(format: ReportKind) -> &'static str {
    match format {
        ReportKind::Junit => "xml",
        ReportKind::Ctrf => "json",
    }
}

/// Stores the report as an artifact of the import's run (of kind report) and queues the
/// import; an import whose report is stored already (a repeated request) is answered as
/// it is. A failure names the step that failed.
async fn store_and_start(
    state: &AppState,
    principal: &Principal,
    created: CreatedImport,
    report: &Spooled,
    artifact_name: String,
    content_type: &'static str,
) -> Result<Import, (&'static str, ApiError)> {
    if created.report_stored {
        return Ok(created.import);
    }
    let import = created.import;
    let artifact = NewArtifact {
        name: artifact_name
            .try_into()
            .map_err(|err: String| ("declare", ApiError::BadRequest(err)))?,
        content_type: ContentType::try_from(content_type.to_owned())
            .map_err(|err| ("declare", ApiError::BadRequest(err)))?,
        size: report.size,
        sha256: report.sha256.clone(),
        result_id: None,
    };
    let declared = state
        .bus
        .request_as(
            &artifacts::DECLARE_REPORT,
            &Keyed::plain(DeclareArtifact {
                run_id: import.run_id,
                artifact,
            }),
            principal,
        )
        .await
        .map_err(|err| ("declare", err.into()))?;
    upload(state, report.file.path(), report.size, &declared.upload)
        .await
        .map_err(|err| ("upload", err))?;
    let artifact_id = declared.id;
    state
        .bus
        .request_as(
            &artifacts::COMPLETE,
            &ArtifactRef { artifact_id },
            principal,
        )
        .await
        .map_err(|err| ("complete", err.into()))?;
    let start = StartImport {
        import_id: import.id,
        artifact_id,
    };
    state
        .bus
        .request_as(&runs::START_IMPORT, &start, principal)
        .await
        .map_err(|err| ("start", err.into()))
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
            .map_err(ApiError::Spool)?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(ApiError::Spool)?;
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
        let stored = request.send().await.map_err(ApiError::upstream_request)?;
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

impl Spooled {
    /// Removes the temporary file now, saying so if that fails (dropping it would
    /// try as well, silently).
    fn discard(self) {
        if let Err(err) = self.file.close() {
            tracing::warn!(error = %err, "could not remove a spooled report");
        }
    }
}

/// Streams the body to a temporary file, measuring and hashing it on the way; the route's
/// body limit bounds it (decompressed, when it came gzipped).
async fn spool(body: Body) -> Result<Spooled, ApiError> {
    let file = tempfile::NamedTempFile::new().map_err(ApiError::Spool)?;
    let reopened = file.reopen().map_err(ApiError::Spool)?;
    let mut out = tokio::fs::File::from_std(reopened);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| body_error(&err))?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        out.write_all(&chunk).await.map_err(ApiError::Spool)?;
    }
    out.flush().await.map_err(ApiError::Spool)?;
    if size == 0 {
        return Err(ApiError::BadRequest("the report is empty".into()));
    }
    Ok(Spooled {
        file,
        size,
        sha256: Sha256Hex::from_digest(&hasher.finalize()),
    })
}
