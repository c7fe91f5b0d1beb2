//! The OpenAPI document, generated from the handlers' annotations.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::problem::{FieldError, Problem};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Verdict API", description = "Test runs, results, artifacts and live monitoring."),
    paths(
        super::probes::healthz, super::probes::readyz, document, super::system::version,
        super::system::status,
        super::auth::login, super::auth::refresh, super::auth::logout, super::auth::me, super::auth::jwks,
        super::users::create, super::users::update, super::users::list,
        super::projects::create, super::projects::list, super::projects::get,
        super::projects::put_member, super::projects::delete_member,
        super::projects::list_members, super::projects::add_member,
        super::tokens::create, super::tokens::list, super::tokens::revoke,
        super::admin::rotate_keys,
        super::webhooks::create, super::webhooks::list, super::webhooks::get,
        super::webhooks::update, super::webhooks::delete, super::webhooks::deliveries,
        super::webhooks::redeliver,
        super::artifacts::declare, super::artifacts::complete, super::artifacts::list,
        super::artifacts::declare_batch, super::artifacts::complete_batch,
        super::artifacts::get, super::artifacts::download,
        super::runs::create, super::runs::list, super::runs::get, super::runs::delete,
        super::runs::post_results, super::runs::finish, super::runs::list_results,
        super::runs::history, super::runs::flaky, super::runs::shard,
        super::imports::create, super::imports::into_run, super::imports::get,
        super::triage::list_failures, super::triage::signature_results, super::triage::run_failures,
        super::triage::set_quarantine, super::triage::release_quarantine, super::triage::get_quarantine,
        super::triage::list_tests, super::triage::slowest, super::triage::test_trend,
        super::triage::project_trend,
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "probes", description = "Liveness and readiness; no authentication"),
        (name = "system", description = "About the running system"),
        (name = "auth", description = "Sign-in, tokens and the caller's profile"),
        (name = "users", description = "User administration"),
        (name = "projects", description = "Projects and members"),
        (name = "tokens", description = "API tokens for CI"),
        (name = "admin", description = "Administration"),
        (name = "webhooks", description = "Project webhooks: signed deliveries of run events (Standard Webhooks), Slack messages, the delivery log"),
        (name = "artifacts", description = "Files attached to runs; bytes go straight to the blob store"),
        (name = "runs", description = "Runs, results, test history and flakiness"),
        (name = "triage", description = "Failures by signature, new failures, quarantine, the test catalog, trends and the slowest tests"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme: an access JWT or an API token.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token from /auth/login, or an API token (vdt_…)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Renders the document once; served from memory afterwards.
pub fn render() -> bytes::Bytes {
    let mut doc = ApiDoc::openapi();
    doc.info.version = crate::VERSION.to_owned();
    bytes::Bytes::from(doc.to_json().unwrap_or_else(|_| "{}".to_owned()))
}

/// This document.
#[utoipa::path(operation_id = "openapi_document", get, path = "/api/v1/openapi.json", tag = "system",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn document(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.clone(),
    )
}
