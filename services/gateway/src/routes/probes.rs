//! Probes for orchestrators and load balancers; no authentication.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
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
/// answered 202; or JetStream answered less than `VERDICT_BUS_RETRY_BUDGET` ago, since
/// a durable publish is retried that long anyway (so a JetStream leader election does
/// not take every gateway out at once). Backend services are deliberately not checked:
/// one of them restarting must not take every gateway out of the load balancer (what
/// still works without it keeps working; what needs it answers 503 with
/// `Retry-After`). `GET /api/v1/status` says which services answer. A 503 names what is
/// down.
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
    let answered = match tokio::time::timeout(state.settings.ready_timeout, info).await {
        Ok(Ok(_)) => true,
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "JetStream does not answer the readiness check");
            false
        }
        Err(_) => {
            tracing::warn!(timeout = ?state.settings.ready_timeout, "JetStream does not answer the readiness check in time");
            false
        }
    };
    if !state
        .jetstream_seen
        .answered(answered, state.settings.bus.retry_budget)
    {
        return Err(ApiError::NotReady(vec![JETSTREAM.to_owned()]));
    }
    Ok(Json(Readiness {
        status: "ready",
        checks: [(NATS.to_owned(), "ok"), (JETSTREAM.to_owned(), "ok")].into(),
    }))
}

/// When JetStream last answered this gateway's readiness check.
#[derive(Debug, Default)]
pub struct JetStreamSeen(Mutex<Option<Instant>>);

impl JetStreamSeen {
    /// Notes whether JetStream `answered` now; true when it did, or did within `grace`.
    fn answered(&self, answered: bool, grace: Duration) -> bool {
        let now = Instant::now();
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if answered {
            *last = Some(now);
        }
        last.is_some_and(|at| now.duration_since(at) <= grace)
    }
}

const NATS: &str = "nats";
const JETSTREAM: &str = "jetstream";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jetstream_counts_as_reachable_for_the_grace_after_it_last_answered_and_never_before() {
        let seen = JetStreamSeen::default();
        let grace = Duration::from_millis(200);
        assert!(!seen.answered(false, grace), "never answered yet");
        assert!(seen.answered(true, grace));
        assert!(seen.answered(false, grace), "within the grace");
        std::thread::sleep(grace + Duration::from_millis(50));
        assert!(!seen.answered(false, grace), "the grace is over");
    }
}
