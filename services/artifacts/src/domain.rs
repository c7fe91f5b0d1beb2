//! What the artifacts service does: declare, complete, read, download and delete
//! artifacts, each for a principal whose role in the run's project allows it.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use verdict_bus::{access, Bus};
use verdict_contracts::artifacts::{
    self, Artifact, ArtifactState, CompleteArtifactsOfRun, CompletedArtifact,
    CompletedArtifactBatch, DeclareArtifact, DeclareArtifactBatch, DeclaredArtifact,
    DeclaredArtifactBatch, DownloadTarget, ListArtifacts, NewArtifact, ReportRef, ReportSource,
    Sha256Hex, MAX_RESULT_ID_BYTES,
};
use verdict_contracts::auth::{Principal, Role};
use verdict_contracts::events::{self, Event, EventKind};
use verdict_contracts::headers;
use verdict_contracts::idempotency::Keyed;
use verdict_contracts::ids::{ArtifactId, ProjectId, RunId};
use verdict_contracts::page::{decode_cursor, encode_cursor, Page};
use verdict_contracts::runs::{RunRef, RUN_SCOPE};
use verdict_contracts::Timestamp;
use verdict_contracts::{ErrorCode, ServiceError};
use verdict_store::idempotency::{keyed, KeyedRequest, Recall};
use verdict_store::Store;

use crate::blob::{BlobStore, DoomedBlob, NewBlob};
use crate::store::{self, ArtifactRow};
use crate::Error;

/// Rows handled per step when deleting.
const DELETE_BATCH: u32 = 500;
/// Artifacts of one batch verified at once: each reads its blob back from the store.
const PARALLEL_COMPLETIONS: usize = 4;
/// Uploads of one batch prepared at once.
const PARALLEL_SIGNING: usize = 8;

/// What an artifact holds, as far as who may read it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    /// Anything a reporter attaches; read by principals with a role in the project.
    Attachment,
    /// The raw report of an import, also read by the runs service without a principal.
    Report,
}

/// The artifacts service's state. Cheap to clone.
#[derive(Clone)]
pub struct Artifacts {
    pub store: Store,
    pub blobs: Arc<dyn BlobStore>,
    pub bus: Bus,
    pub jetstream: async_nats::jetstream::Context,
    pub url_ttl: Duration,
    pub max_size: u64,
    pub project_quota: u64,
}

fn to_artifact(row: ArtifactRow) -> Artifact {
    Artifact {
        state: row.state.parse().unwrap_or(ArtifactState::Deleted),
        id: row.id,
        run_id: row.run_id,
        result_id: row.result_id,
        name: row.name,
        content_type: row.content_type,
        size: row.size,
        sha256: row.sha256,
        created_at: Timestamp::from_millis(row.created_at).to_rfc3339(),
    }
}

/// Artifacts declared together: by one declaration or one batch.
struct Declaration {
    run_id: RunId,
    artifacts: Vec<NewArtifact>,
    kind: ArtifactKind,
    /// Whether errors name the artifact by its place in the batch.
    in_batch: bool,
}

impl Declaration {
    /// A refusal of the artifact at `index`, naming it when it came in a batch.
    fn locate(&self, index: usize, error: Error) -> Error {
        if !self.in_batch {
            return error;
        }
        match error {
            Error::TooLarge(message) => Error::TooLarge(format!("artifacts[{index}]: {message}")),
            Error::BadRequest(message) => {
                Error::BadRequest(format!("artifacts[{index}]: {message}"))
            }
            other => other,
        }
    }
}

/// What an `Idempotency-Key` of a declaration remembers: the id it declared (as every
/// version stored it), or the ids of a batch.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum DeclaredIds {
    One(ArtifactId),
    Batch(Vec<ArtifactId>),
}

impl DeclaredIds {
    fn of(mut ids: impl Iterator<Item = ArtifactId>, in_batch: bool) -> Self {
        match (in_batch, ids.next()) {
            (false, Some(id)) => DeclaredIds::One(id),
            (_, first) => DeclaredIds::Batch(first.into_iter().chain(ids).collect()),
        }
    }

    fn into_vec(self) -> Vec<ArtifactId> {
        match self {
            DeclaredIds::One(id) => vec![id],
            DeclaredIds::Batch(ids) => ids,
        }
    }
}

/// One entry of a completed batch: what completing the artifact alone would answer.
fn completed(id: String, answer: Result<Artifact, Error>) -> CompletedArtifact {
    match answer {
        Ok(artifact) => CompletedArtifact {
            id,
            status: 200,
            artifact: Some(artifact),
            detail: None,
        },
        Err(error) => {
            let error = ServiceError::from(error);
            CompletedArtifact {
                id,
                status: error.code.status(),
                artifact: None,
                detail: Some(error.message),
            }
        }
    }
}

impl Artifacts {
    async fn run_project(&self, run_id: RunId) -> Result<ProjectId, Error> {
        let scope = self
            .bus
            .request(&RUN_SCOPE, &RunRef { run_id })
            .await
            .map_err(|err| Error::Dependency(access::service_error(err)))?;
        Ok(scope.project_id)
    }

    async fn authorize(
        &self,
        principal: &Principal,
        project_id: ProjectId,
        needed: Role,
    ) -> Result<(), Error> {
        access::authorize(&self.bus, principal, &project_id.to_string(), needed)
            .await
            .map(|_| ())
            .map_err(Error::Dependency)
    }

    async fn row(&self, id: ArtifactId) -> Result<ArtifactRow, Error> {
        self.store
            .read(move |conn| store::by_id(conn, id).map_err(Error::from))
            .await?
            .ok_or(Error::NotFound("artifact"))
    }

    /// The artifact, when the caller holds at least `needed` in its project and the runs
    /// service still has its run. Artifacts of a run deleted without this service
    /// hearing of it (a lost `run.deleted`) are as gone as the run.
    async fn visible_row(
        &self,
        principal: &Principal,
        id: ArtifactId,
        needed: Role,
    ) -> Result<ArtifactRow, Error> {
        let row = self.row(id).await?;
        let (authorized, run) = tokio::join!(
            self.authorize(principal, row.project_id, needed),
            self.run_project(row.run_id)
        );
        authorized?;
        run.map_err(|err| match err {
            Error::Dependency(error) if error.code == ErrorCode::NotFound => {
                Error::NotFound("artifact")
            }
            other => other,
        })?;
        Ok(row)
    }

    pub async fn declare(
        &self,
        principal: &Principal,
        request: Keyed<DeclareArtifact>,
        kind: ArtifactKind,
    ) -> Result<DeclaredArtifact, Error> {
        let keyed = match kind {
            ArtifactKind::Attachment => keyed(principal, &artifacts::DECLARE, &request),
            ArtifactKind::Report => keyed(principal, &artifacts::DECLARE_REPORT, &request),
        };
        let request = request.request;
        let declaration = Declaration {
            run_id: request.run_id,
            artifacts: vec![request.artifact],
            kind,
            in_batch: false,
        };
        self.declare_all(principal, declaration, keyed)
            .await?
            .pop()
            .ok_or(Error::NotFound("artifact"))
    }

    /// Declares every artifact of the batch, or none.
    pub async fn declare_batch(
        &self,
        principal: &Principal,
        request: Keyed<DeclareArtifactBatch>,
    ) -> Result<DeclaredArtifactBatch, Error> {
        let keyed = keyed(principal, &artifacts::DECLARE_BATCH, &request);
        let request = request.request;
        let declaration = Declaration {
            run_id: request.run_id,
            artifacts: request.artifacts.into_inner(),
            kind: ArtifactKind::Attachment,
            in_batch: true,
        };
        let items = self.declare_all(principal, declaration, keyed).await?;
        Ok(DeclaredArtifactBatch { items })
    }

    /// Checks the declarations, stores them in one transaction (one quota reservation
    /// for their total) and signs their uploads; answers them in order. A repeated
    /// `Idempotency-Key` gets the artifacts it declared, with their uploads signed anew
    /// (the first ones may have expired).
    async fn declare_all(
        &self,
        principal: &Principal,
        declaration: Declaration,
        keyed: Option<KeyedRequest>,
    ) -> Result<Vec<DeclaredArtifact>, Error> {
        let project_id = self.run_project(declaration.run_id).await?;
        self.authorize(principal, project_id, Role::Reporter)
            .await?;
        for (index, artifact) in declaration.artifacts.iter().enumerate() {
            self.check(artifact)
                .map_err(|error| declaration.locate(index, error))?;
        }
        let now = Timestamp::now().millis();
        let kind = declaration.kind;
        let in_batch = declaration.in_batch;
        let rows: Vec<ArtifactRow> = declaration
            .artifacts
            .into_iter()
            .map(|artifact| {
                let id = ArtifactId::generate();
                ArtifactRow {
                    // Generated, never derived from the name.
                    object_key: self.blobs.object_key(&id.to_string()),
                    id,
                    project_id,
                    run_id: declaration.run_id,
                    result_id: artifact.result_id,
                    name: artifact.name,
                    content_type: artifact.content_type.as_str().to_owned(),
                    size: artifact.size,
                    sha256: artifact.sha256.as_str().to_owned(),
                    state: ArtifactState::Pending.as_str().to_owned(),
                    upload_id: None,
                    created_at: now,
                    completed_at: None,
                }
            })
            .collect();
        let quota = self.project_quota;
        let declared = self
            .store
            .write(move |conn| {
                let tx = conn.transaction()?;
                if let Some(keyed) = &keyed {
                    match keyed.recall::<DeclaredIds>(&tx, now)? {
                        Recall::Repeat(declared) => {
                            return declared
                                .into_vec()
                                .into_iter()
                                .map(|id| store::by_id(&tx, id)?.ok_or(Error::NotFound("artifact")))
                                .collect();
                        }
                        Recall::Conflict => return Err(Error::KeyReused),
                        Recall::New => {}
                    }
                }
                let total = rows.iter().map(|row| row.size).sum();
                if !store::reserve(&tx, project_id, total, quota)? {
                    return Err(Error::TooLarge(
                        "the project's artifact quota is used up".into(),
                    ));
                }
                for row in &rows {
                    store::insert(&tx, row)?;
                    if kind == ArtifactKind::Report {
                        store::mark_report(&tx, row.id)?;
                    }
                }
                if let Some(keyed) = &keyed {
                    let ids = rows.iter().map(|row| row.id);
                    keyed.remember(&tx, &DeclaredIds::of(ids, in_batch), now)?;
                }
                tx.commit()?;
                Ok(rows)
            })
            .await?;
        // Large uploads to S3 each start a multipart upload there: a few at once.
        futures::stream::iter(declared)
            .map(|row| self.sign_upload(row, kind))
            .buffered(PARALLEL_SIGNING)
            .try_collect()
            .await
    }

    /// What is refused before anything is stored: too large, or an unusable result id.
    fn check(&self, artifact: &NewArtifact) -> Result<(), Error> {
        if artifact.size > self.max_size {
            return Err(Error::TooLarge(format!(
                "an artifact may have at most {} bytes",
                self.max_size
            )));
        }
        if let Some(result_id) = &artifact.result_id {
            if result_id.trim().is_empty() || result_id.len() > MAX_RESULT_ID_BYTES {
                return Err(Error::BadRequest(format!(
                    "result_id must be 1 to {MAX_RESULT_ID_BYTES} bytes"
                )));
            }
        }
        Ok(())
    }

    /// Where and how to upload a declared artifact's bytes.
    async fn sign_upload(
        &self,
        row: ArtifactRow,
        kind: ArtifactKind,
    ) -> Result<DeclaredArtifact, Error> {
        let plan = self
            .blobs
            .prepare_upload(
                NewBlob {
                    key: row.object_key.clone(),
                    size: row.size,
                    sha256: Sha256Hex::try_from(row.sha256.clone()).map_err(Error::BadRequest)?,
                    content_type: row.content_type.clone(),
                    by_service: kind == ArtifactKind::Report,
                },
                self.url_ttl,
            )
            .await?;
        if let Some(upload_id) = plan.upload_id.clone() {
            let id = row.id;
            self.store
                .write(move |conn| store::set_upload_id(conn, id, &upload_id).map_err(Error::from))
                .await?;
        }
        Ok(DeclaredArtifact {
            id: row.id,
            upload: plan.target,
            expires_at: Timestamp::from_millis(
                Timestamp::now().millis() + self.url_ttl.as_millis() as i64,
            )
            .to_rfc3339(),
        })
    }

    /// Verifies the upload against the declaration; only then marks the artifact stored
    /// and publishes `artifact.stored`. Completing a stored artifact again answers it
    /// again (and republishes under the same message id, which JetStream drops).
    pub async fn complete(&self, principal: &Principal, id: ArtifactId) -> Result<Artifact, Error> {
        let row = self.visible_row(principal, id, Role::Reporter).await?;
        self.verify_and_store(row).await
    }

    /// Completes each artifact of the batch as [`Artifacts::complete`] would, a few at
    /// once; one artifact's failure is its own entry.
    pub async fn complete_batch(
        &self,
        principal: &Principal,
        request: CompleteArtifactsOfRun,
    ) -> Result<CompletedArtifactBatch, Error> {
        let project_id = self.run_project(request.run_id).await?;
        self.authorize(principal, project_id, Role::Reporter)
            .await?;
        let ids: Vec<String> = request.ids.into();
        let rows = {
            let ids = ids.clone();
            self.store
                .read(move |conn| {
                    // Text that is no artifact id names no artifact.
                    ids.iter()
                        .map(|id| match id.parse() {
                            Ok(id) => store::by_id(conn, id),
                            Err(_) => Ok(None),
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(Error::from)
                })
                .await?
        };
        let run_id = request.run_id;
        let items = futures::stream::iter(ids.into_iter().zip(rows))
            .map(|(id, row)| async move {
                let answer = match row.filter(|row| row.run_id == run_id) {
                    Some(row) => self.verify_and_store(row).await,
                    None => Err(Error::NotFound("artifact")),
                };
                completed(id, answer)
            })
            .buffered(PARALLEL_COMPLETIONS)
            .collect()
            .await;
        Ok(CompletedArtifactBatch { items })
    }

    async fn verify_and_store(&self, row: ArtifactRow) -> Result<Artifact, Error> {
        if row.state == ArtifactState::Pending.as_str() {
            let uploaded = self
                .blobs
                .finish_upload(row.object_key.clone(), row.upload_id.clone(), row.size)
                .await?
                .ok_or_else(|| {
                    Error::Conflict("nothing has been uploaded for this artifact yet".into())
                })?;
            let problem = if uploaded.size != row.size {
                Some(format!(
                    "the upload has {} bytes, {} were declared",
                    uploaded.size, row.size
                ))
            } else if uploaded.sha256.as_deref() != Some(row.sha256.as_str()) {
                Some("the upload's sha256 is not the declared one".to_owned())
            } else {
                None
            };
            if let Some(problem) = problem {
                self.blobs
                    .delete(vec![DoomedBlob {
                        key: row.object_key.clone(),
                        upload_id: None,
                    }])
                    .await?;
                return Err(Error::Mismatch(problem));
            }
            let id = row.id;
            self.store
                .write(move |conn| {
                    store::mark_stored(conn, id, Timestamp::now().millis()).map_err(Error::from)
                })
                .await?;
            metrics::counter!(crate::metrics::UPLOADED_BYTES).increment(row.size);
        }
        let row = self.row(row.id).await?;
        self.publish_stored(&row).await?;
        Ok(to_artifact(row))
    }

    async fn publish_stored(&self, row: &ArtifactRow) -> Result<(), Error> {
        let event = Event::ArtifactStored {
            project_id: row.project_id,
            run_id: row.run_id,
            artifact_id: row.id,
            name: row.name.to_string(),
            size: row.size,
        };
        let payload = serde_json::to_vec(&event).map_err(|err| Error::Publish(err.into()))?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            headers::MSG_ID,
            format!("artifact.stored:{}", row.id).as_str(),
        );
        verdict_bus::trace::inject_current(&mut headers);
        let subject = events::subject(row.project_id, row.run_id, EventKind::ArtifactStored);
        self.jetstream
            .publish_with_headers(subject, headers, payload.into())
            .await
            .map_err(|err| Error::Publish(err.into()))?
            .await
            .map_err(|err| Error::Publish(err.into()))?;
        Ok(())
    }

    pub async fn get(&self, principal: &Principal, id: ArtifactId) -> Result<Artifact, Error> {
        Ok(to_artifact(
            self.visible_row(principal, id, Role::Viewer).await?,
        ))
    }

    pub async fn list(
        &self,
        principal: &Principal,
        request: ListArtifacts,
    ) -> Result<Page<Artifact>, Error> {
        let project_id = self.run_project(request.run_id).await?;
        self.authorize(principal, project_id, Role::Viewer).await?;
        // Keyset: the id in creation order; name and id in name order (with a prefix).
        let by_name = request.prefix.is_some();
        let after = match &request.page.cursor {
            Some(cursor) => decode_cursor(cursor, if by_name { 2 } else { 1 })
                .map_err(|err| Error::BadRequest(err.to_string()))?,
            None => Vec::new(),
        };
        let limit = request.page.effective_limit();
        let (run_id, prefix) = (request.run_id, request.prefix);
        let rows = self
            .store
            .read(move |conn| {
                let key = |index: usize| after.get(index).map_or("", String::as_str);
                match &prefix {
                    None => store::list_by_run(conn, run_id, key(0), limit + 1),
                    Some(prefix) => {
                        store::list_by_prefix(conn, run_id, prefix, (key(0), key(1)), limit + 1)
                    }
                }
                .map_err(Error::from)
            })
            .await?;
        Ok(Page::from_overfetched(
            rows,
            limit,
            |row| match by_name {
                true => encode_cursor(&[row.name.as_str(), &row.id.to_string()]),
                false => encode_cursor(&[&row.id.to_string()]),
            },
            to_artifact,
        ))
    }

    pub async fn download(
        &self,
        principal: &Principal,
        id: ArtifactId,
    ) -> Result<DownloadTarget, Error> {
        let row = self.visible_row(principal, id, Role::Viewer).await?;
        if row.state != ArtifactState::Stored.as_str() {
            return Err(Error::Conflict(
                "the artifact's upload has not been completed".into(),
            ));
        }
        let size = row.size;
        let url = self
            .blobs
            .download_url(
                row.object_key,
                row.name.file_name().to_owned(),
                row.content_type,
                self.url_ttl,
            )
            .await?;
        metrics::counter!(crate::metrics::DOWNLOADED_BYTES).increment(size);
        Ok(DownloadTarget {
            url,
            expires_at: Timestamp::from_millis(
                Timestamp::now().millis() + self.url_ttl.as_millis() as i64,
            )
            .to_rfc3339(),
        })
    }

    /// Where a service reads an import's stored report. No principal: the report must be
    /// an artifact of kind report of the named run, which only an import declares.
    pub async fn report_source(&self, request: ReportRef) -> Result<ReportSource, Error> {
        let row = self.row(request.artifact_id).await?;
        let id = row.id;
        let is_report = self
            .store
            .read(move |conn| store::is_report(conn, id).map_err(Error::from))
            .await?;
        if !is_report || row.run_id != request.run_id {
            return Err(Error::NotFound("report"));
        }
        if row.state != ArtifactState::Stored.as_str() {
            return Err(Error::Conflict(
                "the report's upload has not been completed".into(),
            ));
        }
        let url = self.blobs.service_url(row.object_key, self.url_ttl).await?;
        Ok(ReportSource { url })
    }

    /// Deletes a run's artifacts on a maintainer's request.
    pub async fn delete_run(&self, principal: &Principal, run_id: RunId) -> Result<u64, Error> {
        let known = self
            .store
            .read(move |conn| store::project_of_run(conn, run_id).map_err(Error::from))
            .await?;
        let project_id = match known {
            Some(project_id) => project_id,
            None => self.run_project(run_id).await?,
        };
        self.authorize(principal, project_id, Role::Maintainer)
            .await?;
        self.purge_run(run_id).await
    }

    /// Removes every artifact of a run: rows are marked first, then blobs and rows go in
    /// batches. Safe to repeat and to resume after a crash.
    pub async fn purge_run(&self, run_id: RunId) -> Result<u64, Error> {
        let marked = self
            .store
            .write(move |conn| {
                store::mark_run_deleted(conn, run_id, Timestamp::now().millis())
                    .map_err(Error::from)
            })
            .await?;
        self.drain_deleted().await?;
        Ok(marked)
    }

    /// Deletes the blobs of rows marked deleted, then the rows.
    pub async fn drain_deleted(&self) -> Result<u64, Error> {
        let mut removed = 0;
        loop {
            let batch = self
                .store
                .read(|conn| store::deleted_batch(conn, DELETE_BATCH).map_err(Error::from))
                .await?;
            if batch.is_empty() {
                return Ok(removed);
            }
            let doomed = batch
                .iter()
                .map(|(_, key, upload_id)| DoomedBlob {
                    key: key.clone(),
                    upload_id: upload_id.clone(),
                })
                .collect();
            self.blobs.delete(doomed).await?;
            let ids: Vec<ArtifactId> = batch.into_iter().map(|(id, _, _)| id).collect();
            removed += ids.len() as u64;
            self.store
                .write(move |conn| store::remove(conn, &ids).map_err(Error::from))
                .await?;
        }
    }

    /// One pass of the sweeper: uploads never completed within `grace` are dropped,
    /// rows marked deleted lose their blobs, and blobs older than `grace` that no row
    /// knows are removed.
    pub async fn sweep(&self, grace: Duration) -> Result<SweepReport, Error> {
        let cutoff = Timestamp::now().millis() - grace.as_millis() as i64;
        let expired = self
            .store
            .write(move |conn| {
                store::expire_pending(conn, cutoff, Timestamp::now().millis()).map_err(Error::from)
            })
            .await?;
        let removed = self.drain_deleted().await?;
        let before = std::time::SystemTime::now()
            .checked_sub(grace)
            .unwrap_or(std::time::UNIX_EPOCH);
        let keys = self.blobs.list_keys(before).await?;
        let orphans = self
            .store
            .read(move |conn| store::unknown_keys(conn, &keys).map_err(Error::from))
            .await?;
        let orphan_count = orphans.len() as u64;
        if !orphans.is_empty() {
            self.blobs
                .delete(
                    orphans
                        .into_iter()
                        .map(|key| DoomedBlob {
                            key,
                            upload_id: None,
                        })
                        .collect(),
                )
                .await?;
        }
        Ok(SweepReport {
            expired,
            removed,
            orphans: orphan_count,
        })
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepReport {
    pub expired: u64,
    pub removed: u64,
    pub orphans: u64,
}
