//! The artifacts service: artifact metadata in its own SQLite database, bytes in a blob
//! store (local disk served over signed URLs by this service, or S3 with presigned
//! URLs), verification on `complete`, and deletion with runs. See DESIGN.md.

mod api;
pub mod blob;
mod config;
mod domain;
mod error;
mod http;
mod lifecycle;
mod metrics;
mod signing;
mod store;

use std::sync::Arc;

use rand::RngCore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use verdict_bus::tasks::Tasks;
use verdict_bus::{Bus, ServiceHost};
use verdict_contracts::ServiceName;
use verdict_store::Store;

pub use config::{BlobSettings, DiskSettings, S3Settings, Settings, DEFAULT_S3_PREFIX};
pub use error::Error;

use blob::disk::DiskStore;
use blob::s3::S3Store;
use blob::BlobStore;
use domain::Artifacts;
use signing::UrlSigner;

/// The S3 SDK, for the benchmark's baseline only (it stays a dependency of this crate).
pub use aws_sdk_s3;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// An S3 client configured exactly as the service configures its own (for the
/// benchmark's baseline; aws-sdk-s3 stays inside this crate).
pub fn s3_client(settings: &S3Settings) -> aws_sdk_s3::Client {
    blob::s3::client(settings, settings.endpoint.as_deref())
}

/// Serves the artifacts service until `shutdown` fires, then finishes in-flight requests,
/// drains the bus connection and closes the database.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    metrics::describe();
    let store = Store::open(settings.store.clone(), store::MIGRATIONS).await?;
    let client = verdict_bus::connect(&settings.bus).await?;
    lifecycle::ensure_streams(&client, settings.replicas).await?;
    let stop = shutdown.child_token();
    let work = CancellationToken::new();
    let mut tasks = Tasks::new(stop.clone());
    let blobs: Arc<dyn BlobStore> = match &settings.blobs {
        BlobSettings::Disk(disk) => {
            let secret = match &disk.secret {
                Some(secret) => secret.as_bytes().to_vec(),
                None => {
                    store
                        .write(|conn| {
                            store::secret(conn, "url_signing", || {
                                let mut key = vec![0u8; 32];
                                rand::rngs::OsRng.fill_bytes(&mut key);
                                key
                            })
                            .map_err(Error::from)
                        })
                        .await?
                }
            };
            let listener =
                TcpListener::bind(disk.listen)
                    .await
                    .map_err(|source| Error::Listen {
                        addr: disk.listen,
                        source,
                    })?;
            let bound = listener.local_addr().map_err(|source| Error::Listen {
                addr: disk.listen,
                source,
            })?;
            let base = disk
                .advertise_url
                .clone()
                .unwrap_or_else(|| format!("http://{bound}"));
            let signer = UrlSigner::new(&secret)
                .ok_or_else(|| Error::Blob("the URL signing secret is unusable".into()))?;
            let disk_store = Arc::new(DiskStore::open(&disk.dir, signer, base)?);
            tracing::info!(address = %bound, dir = %disk.dir.display(), "artifact blobs on local disk");
            tasks.critical(
                "blob HTTP server",
                http::serve(listener, store.clone(), disk_store.clone(), work.clone()),
            );
            disk_store
        }
        BlobSettings::S3(s3) => {
            tracing::info!(endpoint = ?s3.endpoint, bucket = %s3.bucket, "artifact blobs in S3");
            Arc::new(S3Store::new(s3))
        }
    };
    let artifacts = Artifacts {
        store: store.clone(),
        blobs,
        bus: Bus::new(client.clone(), &settings.bus),
        jetstream: async_nats::jetstream::new(client.clone()),
        url_ttl: settings.url_ttl,
        max_size: settings.max_size,
        project_quota: settings.project_quota,
    };
    let mut host = ServiceHost::start(
        client,
        ServiceName::Artifacts,
        VERSION,
        settings.bus.instance_file.as_deref(),
    )
    .await?;
    api::register(&mut host, artifacts.clone()).await?;
    tasks.critical(
        "run.deleted consumer",
        lifecycle::do_tasks(artifacts.clone(), settings.replicas, work.clone()),
    );
    tasks.logged(
        "sweeper",
        lifecycle::sweep_periodically(
            artifacts,
            settings.sweep_interval,
            settings.upload_grace,
            work.clone(),
        ),
    );
    tasks.logged(
        "idempotency key expiry",
        verdict_store::idempotency::forget_expired_periodically(store.clone(), work.clone()),
    );
    tracing::info!(database = %store.path().display(), "artifacts service ready");
    let (served, tasks_ended) = tasks.run_alongside(host.serve(stop), work).await;
    let closed = store.close().await;
    served?;
    tasks_ended?;
    Ok(closed?)
}
