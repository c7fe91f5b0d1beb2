//! Probes for orchestrators and load balancers; no authentication.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use futures::future::join_all;
use serde::Serialize;
use utoipa::ToSchema;
use verdict_bus::{Client, ConnectionState};
use verdict_contracts::ServiceName;

use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(operation_id = "healthz", get, path = "/healthz", tag = "probes",
    responses((status = 200, description = "The process is up", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness of the gateway and every backend service.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    /// Each dependency with `ok`.
    pub checks: BTreeMap<String, &'static str>,
}

/// Readiness: NATS is connected and auth, runs, artifacts and realtime each answer a
/// `$SRV.PING`. A 503 names every dependency that does not.
#[utoipa::path(operation_id = "readyz", get, path = "/readyz", tag = "probes",
    responses(
        (status = 200, description = "Every dependency answers", body = Readiness),
        (status = 503, description = "Some dependency is down; `unavailable` names them", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let client = state.bus.client();
    if client.connection_state() != ConnectionState::Connected {
        let mut down = vec!["nats".to_owned()];
        down.extend(ServiceName::ALL.iter().map(|s| s.to_string()));
        return Err(ApiError::NotReady(down));
    }
    let pings = ServiceName::ALL.map(|service| ping(client, service, state.settings.ready_timeout));
    let answers = join_all(pings).await;
    let down: Vec<String> = ServiceName::ALL
        .iter()
        .zip(&answers)
        .filter(|(_, up)| !**up)
        .map(|(service, _)| service.to_string())
        .collect();
    if !down.is_empty() {
        return Err(ApiError::NotReady(down));
    }
    let mut checks: BTreeMap<String, &'static str> = ServiceName::ALL
        .iter()
        .map(|s| (s.to_string(), "ok"))
        .collect();
    checks.insert("nats".to_owned(), "ok");
    Ok(Json(Readiness {
        status: "ready",
        checks,
    }))
}

async fn ping(client: &Client, service: ServiceName, timeout: std::time::Duration) -> bool {
    let request = client.request(service.ping_subject(), bytes::Bytes::new());
    matches!(tokio::time::timeout(timeout, request).await, Ok(Ok(_)))
}
