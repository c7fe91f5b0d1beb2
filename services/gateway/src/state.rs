use std::sync::Arc;

use bytes::Bytes;
use verdict_bus::Bus;

use crate::auth::Authenticator;
use crate::ingest::Ingest;
use crate::live::Live;
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
