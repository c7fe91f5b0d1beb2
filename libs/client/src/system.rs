//! Probes and documents (no authentication), and the system status (administrators).

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;

use crate::client::Repeat;
use crate::{Client, Error};

/// What `GET /readyz` answers when the gateway can take traffic.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Readiness {
    pub status: String,
    /// `nats` and `jetstream`, each with `ok`.
    pub checks: BTreeMap<String, String>,
}

/// What `GET /api/v1/status` answers: every service as the bus sees it now.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SystemStatus {
    /// `ok` when every service has an instance answering, `degraded` otherwise.
    pub status: String,
    /// auth, runs, artifacts, realtime and gateway, in that order.
    pub services: Vec<ServiceStatus>,
}

/// One service in a [`SystemStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// `up` or `down`.
    pub health: String,
    /// The versions its instances run, each once.
    pub versions: Vec<String>,
    pub instances: Vec<ServiceInstance>,
}

/// One process of a service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServiceInstance {
    pub id: String,
    pub version: String,
}

/// What `GET /api/v1/version` answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Versions {
    pub gateway: String,
    /// Each backend service's version; `None` for one that did not answer.
    pub services: BTreeMap<String, Option<String>>,
}

impl Client {
    /// `GET /healthz`: the gateway process is up.
    pub async fn healthz(&self) -> Result<(), Error> {
        self.empty(self.probe(&["healthz"])).await
    }

    /// `GET /readyz`: a 503 problem names in `unavailable` what is down. Sent once, so
    /// that the answer says how things are now.
    pub async fn readyz(&self) -> Result<Readiness, Error> {
        let mut call = self.probe(&["readyz"]);
        call.repeat = Repeat::Never;
        self.json(call).await
    }

    /// `GET /api/v1/openapi.json`: the OpenAPI document of this server.
    pub async fn openapi(&self) -> Result<serde_json::Value, Error> {
        self.json(self.probe(&["api", "v1", "openapi.json"])).await
    }

    /// `GET /api/v1/version`.
    pub async fn version(&self) -> Result<Versions, Error> {
        self.json(self.probe(&["api", "v1", "version"])).await
    }

    /// `GET /api/v1/status` (administrators): every service, its instances and
    /// versions, and whether it is up.
    pub async fn status(&self) -> Result<SystemStatus, Error> {
        self.json(self.call(Method::GET, self.api(&["status"]), Repeat::Idempotent))
            .await
    }

    fn probe(&self, segments: &[&str]) -> crate::client::Call {
        let mut call = self.call(Method::GET, self.url(segments), Repeat::Idempotent);
        call.authenticated = false;
        call
    }
}
