//! Which builds are answering, and (for administrators) every instance on the bus.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use futures::future::join_all;
use serde::Serialize;
use utoipa::ToSchema;
use verdict_contracts::system::{self, Empty};
use verdict_contracts::{ProcessKind, ServiceName};

use crate::extract::Administrator;
use crate::problem::{ApiError, Problem};
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

/// Every service of the installation as the bus sees it now.
#[derive(Debug, Serialize, ToSchema)]
pub struct SystemStatus {
    /// `ok` when every service has an instance answering, `degraded` otherwise.
    pub status: &'static str,
    /// auth, runs, artifacts, realtime, notify and gateway, in that order.
    pub services: Vec<ServiceStatus>,
}

/// One service: its instances that answer on the bus.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceStatus {
    /// `auth`, `runs`, `artifacts`, `realtime`, `notify` or `gateway`.
    pub name: &'static str,
    /// `up` when at least one instance answers, `down` when none does.
    pub health: &'static str,
    /// The versions its instances run, each once, sorted (more than one during an
    /// upgrade).
    pub versions: Vec<String>,
    /// The instances that answered, by id.
    pub instances: Vec<InstanceStatus>,
}

/// One process of a service.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceStatus {
    /// Its id on the bus (`$SRV.PING` answers with it), unique to the process's
    /// registration; `verdict healthcheck` checks this very instance.
    pub id: String,
    pub version: String,
}

/// Every service with the instances that answer the micro-service protocol's discovery
/// (`$SRV.PING`) within `VERDICT_READY_TIMEOUT`, their versions, and whether the service
/// is up. A stopped service is `down` with no instance. Administrators only; decided
/// from the access token, so it answers while the auth service is down.
#[utoipa::path(operation_id = "status", get, path = "/api/v1/status", tag = "system", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every service and its instances", body = SystemStatus),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The gateway cannot reach NATS", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn status(
    State(state): State<AppState>,
    _: Administrator,
) -> Result<Json<SystemStatus>, ApiError> {
    let client = state.bus.client();
    let window = state.settings.ready_timeout;
    let discoveries =
        ProcessKind::ALL.map(|kind| verdict_bus::presence::discover(client, kind, window));
    let mut services = Vec::with_capacity(ProcessKind::ALL.len());
    for (kind, found) in ProcessKind::ALL
        .into_iter()
        .zip(join_all(discoveries).await)
    {
        let instances: Vec<InstanceStatus> = found?
            .into_iter()
            .map(|pong| InstanceStatus {
                id: pong.id,
                version: pong.version,
            })
            .collect();
        let mut versions: Vec<String> = instances.iter().map(|i| i.version.clone()).collect();
        versions.sort();
        versions.dedup();
        services.push(ServiceStatus {
            name: kind.as_str(),
            health: if instances.is_empty() { "down" } else { "up" },
            versions,
            instances,
        });
    }
    let all_up = services.iter().all(|service| !service.instances.is_empty());
    Ok(Json(SystemStatus {
        status: if all_up { "ok" } else { "degraded" },
        services,
    }))
}
