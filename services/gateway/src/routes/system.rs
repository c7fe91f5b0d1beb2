//! Which builds are answering.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use futures::future::join_all;
use serde::Serialize;
use utoipa::ToSchema;
use verdict_contracts::system::{self, Empty};
use verdict_contracts::ServiceName;

use crate::state::AppState;

/// Versions of the gateway and of each backend service; `null` for one that did not answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Versions {
    pub gateway: &'static str,
    pub services: BTreeMap<String, Option<String>>,
}

/// The version of the gateway and of each service behind it.
#[utoipa::path(operation_id = "version", get, path = "/api/v1/version", tag = "system",
    responses((status = 200, description = "Versions", body = Versions)))]
pub async fn version(State(state): State<AppState>) -> Json<Versions> {
    let requests = ServiceName::ALL.map(|service| {
        let bus = state.bus.clone();
        async move {
            let answer = bus.request(&system::version(service), &Empty {}).await;
            if let Err(err) = &answer {
                tracing::debug!(%service, error = %err, "version request failed");
            }
            (service.to_string(), answer.ok().map(|info| info.version))
        }
    });
    Json(Versions {
        gateway: crate::VERSION,
        services: join_all(requests).await.into_iter().collect(),
    })
}
