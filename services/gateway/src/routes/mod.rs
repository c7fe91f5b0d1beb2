//! The HTTP surface: one module per resource, assembled here.

pub mod openapi;
pub mod probes;
pub mod system;

use axum::routing::get;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;

use crate::middleware;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.body_limit;
    Router::new()
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .route("/metrics", get(probes::metrics))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/version", get(system::version))
        // The limit wraps routing, so an oversized body is refused (413) before any
        // handler runs, whatever the route.
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(axum::middleware::from_fn(middleware::request_context))
        .with_state(state)
}
