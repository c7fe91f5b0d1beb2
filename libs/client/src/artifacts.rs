//! Artifacts: declare, upload, complete, list, read, download; and [`Client::upload_file`]
//! and [`Client::upload_batch`], which do the first three for files on disk.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, Url};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use verdict_contracts::artifacts::{
    Artifact, ArtifactIds, ArtifactName, ArtifactNamePrefix, CompleteArtifactBatch,
    CompletedArtifact, CompletedArtifactBatch, ContentType, DeclaredArtifact,
    DeclaredArtifactBatch, NewArtifact, NewArtifactBatch, Sha256Hex, UploadTarget,
};
use verdict_contracts::ids::{ArtifactId, RunId};
use verdict_contracts::page::{Page, PageRequest};

use crate::client::{Payload, Repeat};
use crate::projects::paged;
use crate::{Client, Error, Problem};

/// Files up to this size are read into memory once, hashed and sent from there; larger
/// ones are hashed, then streamed from disk.
const IN_MEMORY_LIMIT: u64 = 8 << 20;

/// A file's bytes as an upload sends them, with their size and SHA-256.
#[derive(Debug, Clone)]
pub struct UploadSource {
    pub size: u64,
    pub sha256: Sha256Hex,
    content: Content,
}

#[derive(Debug, Clone)]
enum Content {
    Memory(Bytes),
    Disk(PathBuf),
}

impl UploadSource {
    /// Reads a file, computing its SHA-256 as it goes; a small one is kept in memory.
    pub async fn read(path: &Path) -> Result<Self, Error> {
        Self::read_keeping(path, IN_MEMORY_LIMIT).await
    }

    /// Hashes a file and leaves its bytes on disk, to be read again when sent: for many
    /// files waiting to be sent at once.
    pub async fn hash(path: &Path) -> Result<Self, Error> {
        Self::read_keeping(path, 0).await
    }

    /// Reads a file, computing its SHA-256, and keeps its bytes in memory when it has
    /// at most `in_memory_limit` of them.
    async fn read_keeping(path: &Path, in_memory_limit: u64) -> Result<Self, Error> {
        let file_error = |source| Error::File {
            path: path.to_owned(),
            source,
        };
        let mut file = tokio::fs::File::open(path).await.map_err(file_error)?;
        let size = file.metadata().await.map_err(file_error)?.len();
        let mut hasher = Sha256::new();
        if size <= in_memory_limit {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes).await.map_err(file_error)?;
            hasher.update(&bytes);
            return Ok(UploadSource {
                size: bytes.len() as u64,
                sha256: Sha256Hex::from_digest(&hasher.finalize()),
                content: Content::Memory(bytes.into()),
            });
        }
        let mut buffer = vec![0; 256 << 10];
        let mut read = 0u64;
        loop {
            let n = file.read(&mut buffer).await.map_err(file_error)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            read += n as u64;
        }
        Ok(UploadSource {
            size: read,
            sha256: Sha256Hex::from_digest(&hasher.finalize()),
            content: Content::Disk(path.to_owned()),
        })
    }

    /// `len` bytes from `offset`.
    fn range(&self, offset: u64, len: u64) -> Payload {
        match &self.content {
            Content::Memory(bytes) => {
                let start = (offset as usize).min(bytes.len());
                let end = (offset.saturating_add(len) as usize).min(bytes.len());
                Payload::Bytes {
                    bytes: bytes.slice(start..end),
                    content_type: None,
                    content_encoding: None,
                }
            }
            Content::Disk(path) => Payload::File {
                path: path.clone(),
                offset,
                len,
            },
        }
    }
}

/// A file to attach to a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    pub path: PathBuf,
    pub name: ArtifactName,
    pub content_type: ContentType,
    /// The result (its client-chosen id) the file belongs to.
    pub result_id: Option<String>,
}

impl Client {
    /// `POST /runs/{run}/artifacts`: declares an artifact and answers where to send it.
    pub async fn declare_artifact(
        &self,
        run_id: RunId,
        artifact: &NewArtifact,
    ) -> Result<DeclaredArtifact, Error> {
        let mut call = self.call(
            Method::POST,
            self.api(&["runs", &run_id.to_string(), "artifacts"]),
            Repeat::keyed(),
        );
        call.payload = Payload::json(artifact)?;
        self.json(call).await
    }

    /// Sends the bytes as the declaration said: to its URL, or part by part. Never with
    /// the client's token (the URL is signed), repeated like any idempotent PUT.
    pub async fn upload(&self, target: &UploadTarget, source: &UploadSource) -> Result<(), Error> {
        let method = Method::from_bytes(target.method.as_bytes())
            .map_err(|_| upload_error(target, "an unknown method"))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &target.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| upload_error(target, "an invalid header name"))?;
            if name == reqwest::header::CONTENT_LENGTH {
                continue;
            }
            let value = HeaderValue::from_str(value)
                .map_err(|_| upload_error(target, "an invalid header value"))?;
            headers.insert(name, value);
        }
        let pieces: Vec<(&str, u64, u64)> = match &target.parts {
            None => vec![(target.url.as_str(), 0, source.size)],
            Some(parts) => {
                let mut offset = 0;
                parts
                    .iter()
                    .map(|part| {
                        let piece = (part.url.as_str(), offset, part.size);
                        offset += part.size;
                        piece
                    })
                    .collect()
            }
        };
        for (url, offset, len) in pieces {
            let url = Url::parse(url).map_err(|_| upload_error(target, "a relative URL"))?;
            let mut call = self.call(method.clone(), url, Repeat::Idempotent);
            call.authenticated = false;
            call.headers = headers.clone();
            call.payload = source.range(offset, len);
            self.empty(call).await?;
        }
        Ok(())
    }

    /// `POST /artifacts/{id}/complete`: the server checks size and SHA-256 of what was
    /// uploaded (422 when they differ). Completing again answers the same, so it is
    /// repeated like a creating POST.
    pub async fn complete_artifact(&self, artifact_id: ArtifactId) -> Result<Artifact, Error> {
        self.json(self.call(
            Method::POST,
            self.api(&["artifacts", &artifact_id.to_string(), "complete"]),
            Repeat::keyed(),
        ))
        .await
    }

    /// Declares, uploads and completes one file: its SHA-256 is computed while it is
    /// read, and checked by the server.
    pub async fn upload_file(&self, run_id: RunId, file: &ArtifactFile) -> Result<Artifact, Error> {
        let source = UploadSource::read(&file.path).await?;
        let declared = self
            .declare_artifact(
                run_id,
                &NewArtifact {
                    name: file.name.clone(),
                    content_type: file.content_type.clone(),
                    size: source.size,
                    sha256: source.sha256.clone(),
                    result_id: file.result_id.clone(),
                },
            )
            .await?;
        self.upload(&declared.upload, &source).await?;
        self.complete_artifact(declared.id).await
    }

    /// `POST /runs/{run}/artifacts/batch`: declares up to [`MAX_BATCH_ARTIFACTS`](verdict_contracts::artifacts::MAX_BATCH_ARTIFACTS)
    /// artifacts at once, all or none; answers where to send each, in order.
    pub async fn declare_artifacts(
        &self,
        run_id: RunId,
        artifacts: Vec<NewArtifact>,
    ) -> Result<Vec<DeclaredArtifact>, Error> {
        let path = self.api(&["runs", &run_id.to_string(), "artifacts", "batch"]);
        let artifacts = artifacts
            .try_into()
            .map_err(|reason: String| Error::Config(format!("a batch of artifacts {reason}")))?;
        let mut call = self.call(Method::POST, path, Repeat::keyed());
        call.payload = Payload::json(&NewArtifactBatch { artifacts })?;
        let declared: DeclaredArtifactBatch = self.json(call).await?;
        Ok(declared.items)
    }

    /// `POST /runs/{run}/artifacts/complete`: completes up to [`MAX_BATCH_ARTIFACTS`](verdict_contracts::artifacts::MAX_BATCH_ARTIFACTS)
    /// artifacts, each as [`Client::complete_artifact`] would; answers each one's outcome,
    /// in order. Completing again answers the same, so it is repeated like a creating
    /// POST.
    pub async fn complete_artifacts(
        &self,
        run_id: RunId,
        ids: &[ArtifactId],
    ) -> Result<Vec<Result<Artifact, Error>>, Error> {
        let path = self.api(&["runs", &run_id.to_string(), "artifacts", "complete"]);
        let ids: ArtifactIds = ids
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .try_into()
            .map_err(|reason: String| Error::Config(format!("a batch of artifact ids {reason}")))?;
        let mut call = self.call(Method::POST, path.clone(), Repeat::keyed());
        call.payload = Payload::json(&CompleteArtifactBatch { ids })?;
        let completed: CompletedArtifactBatch = self.json(call).await?;
        Ok(completed
            .items
            .into_iter()
            .map(|item| item_outcome(&path, item))
            .collect())
    }

    /// Declares, uploads and completes up to [`MAX_BATCH_ARTIFACTS`](verdict_contracts::artifacts::MAX_BATCH_ARTIFACTS) files with one
    /// declaration and one completion request, `parallel` uploads at once; answers
    /// each file's outcome, in order. The error is the batch's when a request for all
    /// of them failed.
    pub async fn upload_batch(
        &self,
        run_id: RunId,
        files: &[ArtifactFile],
        parallel: usize,
    ) -> Result<Vec<Result<Artifact, Error>>, Error> {
        let mut outcomes: Vec<Option<Result<Artifact, Error>>> =
            files.iter().map(|_| None).collect();
        let sources: Vec<_> = futures::stream::iter(files)
            .map(|file| UploadSource::hash(&file.path))
            .buffered(parallel)
            .collect()
            .await;
        let mut hashed = Vec::new();
        for (index, source) in sources.into_iter().enumerate() {
            match source {
                Ok(source) => hashed.push((index, source)),
                Err(err) => outcomes[index] = Some(Err(err)),
            }
        }
        if !hashed.is_empty() {
            let declarations = hashed
                .iter()
                .map(|(index, source)| {
                    let file = &files[*index];
                    NewArtifact {
                        name: file.name.clone(),
                        content_type: file.content_type.clone(),
                        size: source.size,
                        sha256: source.sha256.clone(),
                        result_id: file.result_id.clone(),
                    }
                })
                .collect();
            let declared = self.declare_artifacts(run_id, declarations).await?;
            let uploads: Vec<_> = futures::stream::iter(hashed.iter().zip(&declared))
                .map(|((index, source), declared)| async move {
                    (
                        *index,
                        self.upload(&declared.upload, source)
                            .await
                            .map(|()| declared.id),
                    )
                })
                .buffered(parallel)
                .collect()
                .await;
            let mut uploaded = Vec::new();
            for (index, upload) in uploads {
                match upload {
                    Ok(id) => uploaded.push((index, id)),
                    Err(err) => outcomes[index] = Some(Err(err)),
                }
            }
            if !uploaded.is_empty() {
                let ids: Vec<ArtifactId> = uploaded.iter().map(|(_, id)| *id).collect();
                let completed = self.complete_artifacts(run_id, &ids).await?;
                for ((index, _), outcome) in uploaded.into_iter().zip(completed) {
                    outcomes[index] = Some(outcome);
                }
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|outcome| {
                outcome.unwrap_or_else(|| {
                    Err(Error::Config(
                        "the server answered fewer artifacts than were sent".into(),
                    ))
                })
            })
            .collect())
    }

    /// `GET /runs/{run}/artifacts`: oldest first, or with a `prefix` (a directory such
    /// as `screens/`) those below it in name order.
    pub async fn list_artifacts(
        &self,
        run_id: RunId,
        prefix: Option<&ArtifactNamePrefix>,
        page: &PageRequest,
    ) -> Result<Page<Artifact>, Error> {
        let mut call = self.call(
            Method::GET,
            self.api(&["runs", &run_id.to_string(), "artifacts"]),
            Repeat::Idempotent,
        );
        if let Some(prefix) = prefix {
            call.url
                .query_pairs_mut()
                .append_pair("prefix", prefix.as_str());
        }
        paged(&mut call.url, page);
        self.json(call).await
    }

    /// `GET /artifacts/{id}`.
    pub async fn artifact(&self, artifact_id: ArtifactId) -> Result<Artifact, Error> {
        self.json(self.call(
            Method::GET,
            self.api(&["artifacts", &artifact_id.to_string()]),
            Repeat::Idempotent,
        ))
        .await
    }

    /// `GET /artifacts/{id}/download`: the short-lived signed URL it redirects to.
    pub async fn download_url(&self, artifact_id: ArtifactId) -> Result<Url, Error> {
        let call = self.call(
            Method::GET,
            self.api(&["artifacts", &artifact_id.to_string(), "download"]),
            Repeat::Idempotent,
        );
        let path = call.url.path().to_owned();
        let response = self.send(call).await?;
        response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|location| Url::parse(location).ok())
            .ok_or_else(|| Error::Decode {
                method: "GET".into(),
                path,
                reason: "no absolute Location to download from".into(),
            })
    }

    /// The artifact's bytes, fetched from its signed URL (without the token).
    pub async fn download(&self, artifact_id: ArtifactId) -> Result<Bytes, Error> {
        let url = self.download_url(artifact_id).await?;
        let mut call = self.call(Method::GET, url, Repeat::Idempotent);
        call.authenticated = false;
        self.bytes(call).await
    }
}

/// One entry of a completed batch as the outcome of completing that artifact alone.
fn item_outcome(path: &Url, item: CompletedArtifact) -> Result<Artifact, Error> {
    match item.artifact {
        Some(artifact) if item.status == 200 => Ok(artifact),
        _ => {
            let status = reqwest::StatusCode::from_u16(item.status)
                .unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR);
            let detail = item.detail.unwrap_or_default();
            let problem = Problem::from_response(status, &[], None);
            Err(Error::Api {
                method: Method::POST.to_string(),
                path: path.path().to_owned(),
                problem: Box::new(Problem { detail, ..problem }),
            })
        }
    }
}

fn upload_error(target: &UploadTarget, what: &str) -> Error {
    let mut url = target.url.clone();
    url.truncate(url.find('?').unwrap_or(url.len()));
    Error::Decode {
        method: target.method.clone(),
        path: url,
        reason: format!("the upload instructions hold {what}"),
    }
}
