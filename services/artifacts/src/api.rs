//! The artifacts service's bus endpoints: decode, establish the caller, call the domain,
//! encode. Errors become service errors in `error.rs`.

use verdict_bus::{BusError, ServiceHost};
use verdict_contracts::artifacts::{self, BlobEndpoint, DeletedArtifacts};

use crate::domain::{ArtifactKind, Artifacts};
use crate::Error;

pub async fn register(host: &mut ServiceHost, artifacts: Artifacts) -> Result<(), BusError> {
    let mut endpoints = host.with_state(artifacts);
    endpoints
        .for_principal(artifacts::DECLARE, |a, p, body| async move {
            a.declare(&p, body, ArtifactKind::Attachment).await
        })
        .await?;
    endpoints
        .for_principal(artifacts::DECLARE_REPORT, |a, p, body| async move {
            a.declare(&p, body, ArtifactKind::Report).await
        })
        .await?;
    endpoints
        .for_principal(artifacts::DECLARE_BATCH, |a, p, body| async move {
            a.declare_batch(&p, body).await
        })
        .await?;
    endpoints
        .for_principal(artifacts::COMPLETE, |a, p, body| async move {
            a.complete(&p, body.artifact_id).await
        })
        .await?;
    endpoints
        .for_principal(artifacts::COMPLETE_BATCH, |a, p, body| async move {
            a.complete_batch(&p, body).await
        })
        .await?;
    endpoints
        .for_principal(artifacts::GET, |a, p, body| async move {
            a.get(&p, body.artifact_id).await
        })
        .await?;
    endpoints
        .for_principal(artifacts::LIST, |a, p, body| async move {
            a.list(&p, body).await
        })
        .await?;
    endpoints
        .for_principal(artifacts::DOWNLOAD, |a, p, body| async move {
            a.download(&p, body.artifact_id).await
        })
        .await?;
    endpoints
        .for_principal(artifacts::DELETE_RUN, |a, p, body| async move {
            a.delete_run(&p, body.run_id)
                .await
                .map(|deleted| DeletedArtifacts { deleted })
        })
        .await?;
    endpoints
        .for_service(artifacts::REPORT_SOURCE, |a, body| async move {
            a.report_source(body).await
        })
        .await?;
    endpoints
        .for_service(artifacts::BLOB_ENDPOINT, |a, _| async move {
            Ok::<_, Error>(BlobEndpoint {
                base_url: a.blobs.http_base(),
            })
        })
        .await
}
