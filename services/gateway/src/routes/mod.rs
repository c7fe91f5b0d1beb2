//! The HTTP surface: one module per resource, assembled here with the layers every
//! request goes through.

pub mod admin;
pub mod artifacts;
pub mod auth;
pub mod imports;
pub mod live;
pub mod openapi;
pub mod probes;
pub mod projects;
pub mod runs;
pub mod system;
pub mod tokens;
pub mod triage;
pub mod users;
pub mod webhooks;

use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::{get, patch, post, put};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::AppState;
use crate::{content_encoding, middleware};

/// Bodies of the auth and access API are a few small fields.
const ACCESS_BODY_LIMIT: usize = 64 * 1024;
/// The dashboard's forms are a few small fields.
const FORM_BODY_LIMIT: usize = 64 * 1024;
/// Artifact declarations are a few small fields; the bytes go to the blob store.
const ARTIFACT_BODY_LIMIT: usize = 16 * 1024;
/// A batch of 100 declarations with the longest names, content types and result ids.
const ARTIFACT_BATCH_BODY_LIMIT: usize = 256 * 1024;

pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.body_limit;
    let access = Router::new()
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/refresh", post(auth::refresh))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/me", get(auth::me))
        .route("/api/v1/users", post(users::create).get(users::list))
        .route("/api/v1/users/{user_id}", patch(users::update))
        .route(
            "/api/v1/projects",
            post(projects::create).get(projects::list),
        )
        .route("/api/v1/projects/{project}", get(projects::get))
        .route(
            "/api/v1/projects/{project}/members",
            get(projects::list_members).post(projects::add_member),
        )
        .route(
            "/api/v1/projects/{project}/members/{user_id}",
            put(projects::put_member).delete(projects::delete_member),
        )
        .route(
            "/api/v1/projects/{project}/tokens",
            post(tokens::create).get(tokens::list),
        )
        .route(
            "/api/v1/projects/{project}/tokens/{id}",
            axum::routing::delete(tokens::revoke),
        )
        .route(
            "/api/v1/projects/{project}/webhooks",
            post(webhooks::create).get(webhooks::list),
        )
        .route(
            "/api/v1/projects/{project}/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route(
            "/api/v1/projects/{project}/webhooks/{id}/deliveries",
            get(webhooks::deliveries),
        )
        .route(
            "/api/v1/projects/{project}/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            post(webhooks::redeliver),
        )
        .route("/api/v1/admin/keys/rotate", post(admin::rotate_keys))
        .layer(RequestBodyLimitLayer::new(ACCESS_BODY_LIMIT));
    let artifact_api = Router::new()
        .route(
            "/api/v1/runs/{run}/artifacts",
            post(artifacts::declare).get(artifacts::list),
        )
        .route("/api/v1/artifacts/{id}", get(artifacts::get))
        .route("/api/v1/artifacts/{id}/complete", post(artifacts::complete))
        .route("/api/v1/artifacts/{id}/download", get(artifacts::download))
        .layer(RequestBodyLimitLayer::new(ARTIFACT_BODY_LIMIT));
    let artifact_batches = Router::new()
        .route(
            "/api/v1/runs/{run}/artifacts/batch",
            post(artifacts::declare_batch),
        )
        .route(
            "/api/v1/runs/{run}/artifacts/complete",
            post(artifacts::complete_batch),
        )
        .layer(RequestBodyLimitLayer::new(ARTIFACT_BATCH_BODY_LIMIT));
    // Signed blob URLs of the local-disk store: no body limit here (the artifacts
    // service holds each upload to its declared size), bodies stream through.
    let blobs = Router::new().route(
        "/blobs/{key}",
        get(artifacts::blob_get).put(artifacts::blob_put),
    );
    // Gzip bodies are decompressed before the limit, which then bounds their
    // decompressed size.
    let report_limit = state.settings.report_limit;
    let reports = Router::new()
        .route("/api/v1/projects/{project}/imports", post(imports::create))
        .route("/api/v1/runs/{run}/imports", post(imports::into_run))
        .layer(RequestBodyLimitLayer::new(report_limit))
        .layer(axum::middleware::from_fn_with_state(
            report_limit,
            content_encoding::decompress,
        ));
    let results_limit = state.settings.results_body_limit;
    let results = Router::new()
        .route(
            "/api/v1/runs/{run}/results",
            post(runs::post_results).get(runs::list_results),
        )
        .layer(RequestBodyLimitLayer::new(results_limit))
        .layer(axum::middleware::from_fn_with_state(
            results_limit,
            content_encoding::decompress,
        ));
    let api = Router::new()
        .route(
            "/api/v1/projects/{project}/runs",
            post(runs::create).get(runs::list),
        )
        .route("/api/v1/runs/{run}", get(runs::get).delete(runs::delete))
        .route("/api/v1/runs/{run}/finish", post(runs::finish))
        .route("/api/v1/runs/{run}/shards/{shard}", get(runs::shard))
        .route("/api/v1/projects/{project}/tests/flaky", get(runs::flaky))
        .route("/api/v1/projects/{project}/tests", get(triage::list_tests))
        .route(
            "/api/v1/projects/{project}/tests/slowest",
            get(triage::slowest),
        )
        .route(
            "/api/v1/projects/{project}/tests/{test_key}/quarantine",
            put(triage::set_quarantine)
                .delete(triage::release_quarantine)
                .get(triage::get_quarantine),
        )
        .route(
            "/api/v1/projects/{project}/tests/{test_key}/trend",
            get(triage::test_trend),
        )
        .route(
            "/api/v1/projects/{project}/trend",
            get(triage::project_trend),
        )
        .route(
            "/api/v1/projects/{project}/failures",
            get(triage::list_failures),
        )
        .route(
            "/api/v1/projects/{project}/failures/{signature}",
            get(triage::signature_results),
        )
        .route("/api/v1/runs/{run}/failures", get(triage::run_failures))
        .route(
            "/api/v1/projects/{project}/tests/{test_key}/history",
            get(runs::history),
        )
        .route("/api/v1/imports/{id}", get(imports::get))
        .route("/api/v1/live", get(live::upgrade))
        .route("/api/v1/version", get(system::version))
        .route("/api/v1/status", get(system::status))
        .route("/.well-known/jwks.json", get(auth::jwks))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .merge(access)
        .merge(artifact_api)
        .merge(artifact_batches)
        .merge(blobs)
        .merge(results)
        .merge(reports)
        .merge(
            verdict_web::router(state.web.clone())
                .layer(RequestBodyLimitLayer::new(FORM_BODY_LIMIT)),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::limit_by_ip,
        ));
    let probes = Router::new()
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .route("/api/v1/openapi.json", get(openapi::document));
    // Each group carries its own body limit, checked against Content-Length before any
    // handler runs and enforced while the body streams in.
    let mut router = api
        .merge(probes.layer(RequestBodyLimitLayer::new(body_limit)))
        .layer(axum::middleware::from_fn(middleware::request_context));
    for (name, value) in SECURITY_HEADERS {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    if let Some(cors) = cors(&state.settings.cors_origins) {
        router = router.layer(cors);
    }
    router.with_state(state)
}

/// Sent with every response: the API serves data, never pages, so browsers may neither
/// sniff, frame nor cache it.
const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("cache-control", "no-store"),
];

/// CORS for the configured origins only; none configured means no CORS headers at all.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                header::CONTENT_ENCODING,
            ])
            .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER]),
    )
}
