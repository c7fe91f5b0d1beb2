//! The artifacts service's bus endpoints: decode, establish the caller, call the domain,
//! encode. Errors become service errors in `error.rs`.

use std::future::Future;
use std::sync::Arc;

use verdict_bus::{BusError, Call, ServiceHost};
use verdict_contracts::artifacts::{self, BlobEndpoint, DeletedArtifacts, ReportRef};
use verdict_contracts::auth::Principal;
use verdict_contracts::{Operation, ServiceError};

use crate::domain::{ArtifactKind, Artifacts};
use crate::Error;

pub async fn register(host: &mut ServiceHost, artifacts: Artifacts) -> Result<(), BusError> {
    authenticated(
        host,
        &artifacts,
        artifacts::DECLARE,
        |a, p, body| async move { a.declare(&p, body, ArtifactKind::Attachment).await },
    )
    .await?;
    authenticated(
        host,
        &artifacts,
        artifacts::DECLARE_REPORT,
        |a, p, body| async move { a.declare(&p, body, ArtifactKind::Report).await },
    )
    .await?;
    authenticated(
        host,
        &artifacts,
        artifacts::COMPLETE,
        |a, p, body| async move { a.complete(&p, body.artifact_id).await },
    )
    .await?;
    authenticated(host, &artifacts, artifacts::GET, |a, p, body| async move {
        a.get(&p, body.artifact_id).await
    })
    .await?;
    authenticated(host, &artifacts, artifacts::LIST, |a, p, body| async move {
        a.list(&p, body).await
    })
    .await?;
    authenticated(
        host,
        &artifacts,
        artifacts::DOWNLOAD,
        |a, p, body| async move { a.download(&p, body.artifact_id).await },
    )
    .await?;
    authenticated(
        host,
        &artifacts,
        artifacts::DELETE_RUN,
        |a, p, body| async move {
            a.delete_run(&p, body.run_id)
                .await
                .map(|deleted| DeletedArtifacts { deleted })
        },
    )
    .await?;
    let reports = artifacts.clone();
    host.endpoint(artifacts::REPORT_SOURCE, move |call: Call<ReportRef>| {
        let artifacts = reports.clone();
        async move {
            artifacts
                .report_source(call.body)
                .await
                .map_err(ServiceError::from)
        }
    })
    .await?;
    let base_url = artifacts.blobs.http_base();
    host.endpoint(artifacts::BLOB_ENDPOINT, move |_call| {
        let base_url = base_url.clone();
        async move { Ok(BlobEndpoint { base_url }) }
    })
    .await
}

/// An endpoint on behalf of the principal the gateway established.
async fn authenticated<Req, Resp, F, Fut>(
    host: &mut ServiceHost,
    artifacts: &Artifacts,
    operation: Operation<Req, Resp>,
    handler: F,
) -> Result<(), BusError>
where
    Req: serde::de::DeserializeOwned + Send + 'static,
    Resp: serde::Serialize + Send + 'static,
    F: Fn(Artifacts, Principal, Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, Error>> + Send + 'static,
{
    let artifacts = artifacts.clone();
    let handler = Arc::new(handler);
    host.endpoint(operation, move |call: Call<Req>| {
        let (artifacts, handler) = (artifacts.clone(), handler.clone());
        async move {
            let principal = call.principal()?;
            handler(artifacts, principal, call.body)
                .await
                .map_err(ServiceError::from)
        }
    })
    .await
}
