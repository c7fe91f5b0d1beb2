//! Probes for orchestrators and load balancers; no authentication.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use verdict_bus::ConnectionState;
use verdict_contracts::streams;

use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(operation_id = "healthz", get, path = "/healthz", tag = "probes",
    responses((status = 200, description = "The process is up", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness of this gateway: what it needs to take traffic.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    /// `nats` and `jetstream`, each with `ok`.
    pub checks: BTreeMap<String, &'static str>,
}

/// Readiness: this gateway can take traffic. NATS is connected and JetStream answers
/// (the ingest stream's information), so a result batch can be made durable and
/// answered 202. Backend services are deliberately not checked: one of them restarting
/// must not take every gateway out of the load balancer (what still works without it
/// keeps working; what needs it answers 503 with `Retry-After`). `GET /api/v1/status`
/// says which services answer. A 503 names what is down.
#[utoipa::path(operation_id = "readyz", get, path = "/readyz", tag = "probes",
    responses(
        (status = 200, description = "NATS is connected and JetStream answers", body = Readiness),
        (status = 503, description = "NATS or JetStream is not reachable; `unavailable` names them", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let client = state.bus.client();
    if client.connection_state() != ConnectionState::Connected {
        return Err(ApiError::NotReady(vec![
            NATS.to_owned(),
            JETSTREAM.to_owned(),
        ]));
    }
    let jetstream = verdict_bus::jetstream(client.clone());
    let info = jetstream.get_stream(streams::INGEST.name);
    match tokio::time::timeout(state.settings.ready_timeout, info).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "not ready: JetStream does not answer");
            return Err(ApiError::NotReady(vec![JETSTREAM.to_owned()]));
        }
        Err(_) => {
            tracing::warn!(timeout = ?state.settings.ready_timeout, "not ready: JetStream does not answer in time");
            return Err(ApiError::NotReady(vec![JETSTREAM.to_owned()]));
        }
    }
    Ok(Json(Readiness {
        status: "ready",
        checks: [(NATS.to_owned(), "ok"), (JETSTREAM.to_owned(), "ok")].into(),
    }))
}

const NATS: &str = "nats";
const JETSTREAM: &str = "jetstream";

/// Prometheus metrics of this gateway process.
#[utoipa::path(operation_id = "metrics", get, path = "/metrics", tag = "probes",
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain")))]
pub async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        verdict_telemetry::prometheus_text(),
    )
}
