//! The local-disk store's HTTP server: signed `PUT` uploads and `GET` downloads under
//! `/blobs/<object>`, streamed in both directions (never buffered whole). The gateway
//! proxies this path so clients see one origin.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use verdict_contracts::artifacts::{ArtifactState, Sha256Hex};
use verdict_contracts::ids::ArtifactId;
use verdict_contracts::ServiceError;
use verdict_contracts::Timestamp;
use verdict_store::Store;

use crate::blob::disk::DiskStore;
use crate::blob::is_generated_id;
use crate::blob::{content_disposition, served_content_type};
use crate::signing::SignatureError;
use crate::store::{self, ArtifactRow};
use crate::Error;

/// Bytes gathered before each write to disk, and read per chunk when serving.
const IO_BUFFER: usize = 1 << 20;

#[derive(Clone)]
struct BlobServer {
    store: Store,
    disk: Arc<DiskStore>,
}

#[derive(Debug, Deserialize)]
struct Signed {
    expires: i64,
    sig: String,
}

/// An error as the blob server answers it: the status and message of the service's one
/// error mapping, as plain text (the gateway turns it into a problem document).
struct HttpError(Error);

impl From<Error> for HttpError {
    fn from(error: Error) -> Self {
        HttpError(error)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let error = ServiceError::from(self.0);
        let status =
            StatusCode::from_u16(error.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, error.message).into_response()
    }
}

pub fn router(store: Store, disk: Arc<DiskStore>) -> Router {
    Router::new()
        .route("/blobs/{key}", get(download).put(upload))
        .layer(DefaultBodyLimit::disable())
        .with_state(BlobServer { store, disk })
}

/// Serves until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    disk: Arc<DiskStore>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(store, disk))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

impl BlobServer {
    /// Checks the URL's signature for `method`, then finds the artifact in `state`.
    async fn authorized(
        &self,
        method: &str,
        key: &str,
        signed: &Signed,
        state: ArtifactState,
    ) -> Result<ArtifactRow, Error> {
        self.disk
            .signer()
            .verify(
                method,
                key,
                signed.expires,
                &signed.sig,
                Timestamp::now().secs(),
            )
            .map_err(|err| match err {
                SignatureError::Invalid => {
                    Error::Forbidden("the URL's signature is not valid".into())
                }
                SignatureError::Expired => Error::Forbidden("the URL has expired".into()),
            })?;
        // A local-disk blob's key is its artifact's id.
        let id: ArtifactId = match is_generated_id(key).then(|| key.parse()) {
            Some(Ok(id)) => id,
            _ => return Err(Error::NotFound("blob")),
        };
        let row = self
            .store
            .read(move |conn| store::by_id(conn, id).map_err(Error::from))
            .await?
            .filter(|row| row.object_key == key)
            .ok_or(Error::NotFound("blob"))?;
        if row.state != state.as_str() {
            return Err(Error::Conflict(match state {
                ArtifactState::Pending => "the artifact is not awaiting an upload".into(),
                _ => "the artifact has not been stored".into(),
            }));
        }
        Ok(row)
    }
}

async fn upload(
    State(server): State<BlobServer>,
    Path(key): Path<String>,
    Query(signed): Query<Signed>,
    body: Body,
) -> Result<StatusCode, HttpError> {
    let row = server
        .authorized("PUT", &key, &signed, ArtifactState::Pending)
        .await?;
    let temp = server.disk.temp_path(&key);
    let installed = match receive(body, &temp, row.size).await {
        Ok((size, sha256)) => server.disk.install(&key, &temp, size, &sha256).await,
        Err(error) => Err(error),
    };
    match installed {
        Ok(()) => Ok(StatusCode::OK),
        Err(error) => {
            let _ = tokio::fs::remove_file(&temp).await;
            Err(error.into())
        }
    }
}

/// Streams the body into `temp`, refusing more than `limit` bytes, hashing it on the
/// way, and syncs it; answers its size and hex SHA-256.
async fn receive(body: Body, temp: &std::path::Path, limit: u64) -> Result<(u64, String), Error> {
    let file = tokio::fs::File::create(temp)
        .await
        .map_err(Error::io(temp))?;
    let mut writer = tokio::io::BufWriter::with_capacity(IO_BUFFER, file);
    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|err| Error::BadRequest(format!("the upload broke off: {err}")))?;
        received += chunk.len() as u64;
        if received > limit {
            return Err(Error::TooLarge(format!(
                "the upload is larger than the {limit} bytes declared"
            )));
        }
        hasher.update(&chunk);
        writer.write_all(&chunk).await.map_err(Error::io(temp))?;
    }
    writer.flush().await.map_err(Error::io(temp))?;
    writer.get_ref().sync_all().await.map_err(Error::io(temp))?;
    Ok((received, Sha256Hex::from_digest(&hasher.finalize()).into()))
}

async fn download(
    State(server): State<BlobServer>,
    Path(key): Path<String>,
    Query(signed): Query<Signed>,
) -> Result<Response, HttpError> {
    let row = server
        .authorized("GET", &key, &signed, ArtifactState::Stored)
        .await?;
    let path = server
        .disk
        .object_path(&key)
        .ok_or(Error::NotFound("blob"))?;
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound("blob").into())
        }
        Err(err) => return Err(Error::io(&path)(err).into()),
    };
    let length = file.metadata().await.map_err(Error::io(&path))?.len();
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, IO_BUFFER));
    let header = |value: String| {
        HeaderValue::from_str(&value)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"))
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                header(served_content_type(&row.content_type)),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(length)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&content_disposition(row.name.file_name()))
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; sandbox"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        body,
    )
        .into_response())
}
