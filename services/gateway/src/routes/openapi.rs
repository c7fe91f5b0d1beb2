//! The OpenAPI document, generated from the handlers' annotations.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;

use crate::problem::{FieldError, Problem};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Verdict API", description = "Test runs, results, artifacts and live monitoring."),
    paths(super::probes::healthz, super::probes::readyz, super::probes::metrics, document, super::system::version),
    components(schemas(Problem, FieldError)),
    tags(
        (name = "probes", description = "Liveness, readiness and metrics; no authentication"),
        (name = "system", description = "About the running system"),
    )
)]
pub struct ApiDoc;

/// Renders the document once; served from memory afterwards.
pub fn render() -> bytes::Bytes {
    let mut doc = ApiDoc::openapi();
    doc.info.version = crate::VERSION.to_owned();
    bytes::Bytes::from(doc.to_json().unwrap_or_else(|_| "{}".to_owned()))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn document(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.clone(),
    )
}
