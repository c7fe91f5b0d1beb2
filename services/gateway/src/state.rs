use std::sync::Arc;

use axum::Json;
use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};
use verdict_bus::Bus;
use verdict_contracts::auth::Principal;
use verdict_contracts::Operation;

use crate::auth::Authenticator;
use crate::ingest::Ingest;
use crate::live::Live;
use crate::problem::ApiError;
use crate::ratelimit::Limiter;
use crate::Settings;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub bus: Bus,
    pub settings: Arc<Settings>,
    /// The OpenAPI document, rendered once at start.
    pub openapi: Bytes,
    pub auth: Arc<Authenticator>,
    pub limiter: Arc<Limiter>,
    /// Streams blob transfers to the artifacts service (local-disk store).
    pub blob_client: reqwest::Client,
    pub ingest: Arc<Ingest>,
    pub live: Arc<Live>,
    /// The dashboard's pages.
    pub web: verdict_web::Web,
    /// When JetStream last answered a readiness check.
    pub jetstream_seen: Arc<crate::routes::probes::JetStreamSeen>,
}

impl AppState {
    /// Asks `operation` on behalf of `principal` and answers its reply as the response's
    /// JSON: the last step of most handlers, once they have decoded the request.
    pub async fn answer<Req, Resp>(
        &self,
        operation: &Operation<Req, Resp>,
        request: &Req,
        principal: &Principal,
    ) -> Result<Json<Resp>, ApiError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        Ok(Json(
            self.bus.request_as(operation, request, principal).await?,
        ))
    }
}
