//! Project webhooks (maintainer or owner), served by the notify service.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use verdict_contracts::idempotency::Keyed;
use verdict_contracts::notify::{
    self, CreateWebhook, CreatedWebhook, Delivery, DeliveryRef, ListDeliveries, ListWebhooks,
    NewWebhook, UpdateWebhook, Webhook, WebhookChanges, WebhookRef,
};
use verdict_contracts::page::{Page, PageRequest};
use verdict_contracts::system::Empty;

use crate::extract::{path_id, ApiJson, Authenticated, IdempotencyKeyHeader};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Create a webhook. Its signing secret is in this response only.
#[utoipa::path(operation_id = "create_webhook", post, path = "/api/v1/projects/{project}/webhooks", tag = "webhooks", security(("bearer" = [])), request_body = NewWebhook,
    params(("project" = String, Path, description = "id or slug"),
        ("Idempotency-Key" = Option<String>, Header, description = "the same key and body within 24 h get the first answer, another body 422")),
    responses((status = 201, description = "Created", body = CreatedWebhook),
        (status = 400, description = "Invalid, or a destination that may not be reached (private, loopback, link-local)", body = Problem),
        (status = 403, description = "The caller's role does not allow this", body = Problem), (status = 404, description = "Not found, or not visible to the caller", body = Problem),
        (status = 409, description = "The project has as many webhooks as it may", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(project): Path<String>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(webhook): ApiJson<NewWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let request = Keyed::new(CreateWebhook { project, webhook }, key);
    let created = state
        .bus
        .request_as(&notify::CREATE_WEBHOOK, &request, &principal)
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The project's webhooks, without secrets.
#[utoipa::path(operation_id = "list_webhooks", get, path = "/api/v1/projects/{project}/webhooks", tag = "webhooks", security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"), PageRequest),
    responses((status = 200, description = "OK", body = Page<Webhook>), (status = 403, description = "The caller's role does not allow this", body = Problem), (status = 404, description = "Not found, or not visible to the caller", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(project): Path<String>,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<Webhook>>, ApiError> {
    let request = ListWebhooks { project, page };
    state
        .answer(&notify::LIST_WEBHOOKS, &request, &principal)
        .await
}

/// One webhook; `disabled_reason` says why the service disabled it.
#[utoipa::path(operation_id = "get_webhook", get, path = "/api/v1/projects/{project}/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"), ("id" = String, Path)),
    responses((status = 200, description = "OK", body = Webhook), (status = 403, description = "The caller's role does not allow this", body = Problem), (status = 404, description = "Not found, or not visible to the caller", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((project, webhook_id)): Path<(String, String)>,
) -> Result<Json<Webhook>, ApiError> {
    let request = WebhookRef {
        project,
        webhook_id: path_id(&webhook_id, "webhook not found")?,
    };
    state
        .answer(&notify::GET_WEBHOOK, &request, &principal)
        .await
}

/// Change a webhook's URL, events, format or state; enabling it clears why it was
/// disabled.
#[utoipa::path(operation_id = "update_webhook", patch, path = "/api/v1/projects/{project}/webhooks/{id}", tag = "webhooks", security(("bearer" = [])), request_body = WebhookChanges,
    params(("project" = String, Path, description = "id or slug"), ("id" = String, Path)),
    responses((status = 200, description = "OK", body = Webhook), (status = 400, description = "Invalid", body = Problem),
        (status = 403, description = "The caller's role does not allow this", body = Problem), (status = 404, description = "Not found, or not visible to the caller", body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((project, webhook_id)): Path<(String, String)>,
    ApiJson(changes): ApiJson<WebhookChanges>,
) -> Result<Json<Webhook>, ApiError> {
    let request = UpdateWebhook {
        project,
        webhook_id: path_id(&webhook_id, "webhook not found")?,
        changes,
    };
    state
        .answer(&notify::UPDATE_WEBHOOK, &request, &principal)
        .await
}

/// Delete a webhook and its delivery log; pending deliveries are not made.
#[utoipa::path(operation_id = "delete_webhook", delete, path = "/api/v1/projects/{project}/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"), ("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, description = "The caller's role does not allow this", body = Problem), (status = 404, description = "Not found, or not visible to the caller", body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((project, webhook_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let request = WebhookRef {
        project,
        webhook_id: path_id(&webhook_id, "webhook not found")?,
    };
    let Empty {} = state
        .bus
        .request_as(&notify::DELETE_WEBHOOK, &request, &principal)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's delivery log, newest first: status, attempts, the last response code,
/// latency and error.
#[utoipa::path(operation_id = "list_webhook_deliveries", get, path = "/api/v1/projects/{project}/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"), ("id" = String, Path), PageRequest),
    responses((status = 200, description = "OK", body = Page<Delivery>), (status = 403, description = "The caller's role does not allow this", body = Problem), (status = 404, description = "Not found, or not visible to the caller", body = Problem)))]
pub async fn deliveries(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((project, webhook_id)): Path<(String, String)>,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<Delivery>>, ApiError> {
    let request = ListDeliveries {
        project,
        webhook_id: path_id(&webhook_id, "webhook not found")?,
        page,
    };
    state
        .answer(&notify::LIST_DELIVERIES, &request, &principal)
        .await
}

/// Send a delivery again now, with the same `webhook-id`; its retry schedule starts
/// over.
#[utoipa::path(operation_id = "redeliver_webhook_delivery", post, path = "/api/v1/projects/{project}/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "webhooks", security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"), ("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 202, description = "Due again", body = Delivery), (status = 403, description = "The caller's role does not allow this", body = Problem), (status = 404, description = "Not found, or not visible to the caller", body = Problem)))]
pub async fn redeliver(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((project, webhook_id, delivery_id)): Path<(String, String, String)>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let request = DeliveryRef {
        project,
        webhook_id: path_id(&webhook_id, "webhook not found")?,
        delivery_id: path_id(&delivery_id, "delivery not found")?,
    };
    let delivery = state
        .bus
        .request_as(&notify::REDELIVER, &request, &principal)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}
