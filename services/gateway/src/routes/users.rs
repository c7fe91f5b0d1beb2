//! User administration (administrators only).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use verdict_contracts::auth::{self, CreateUser, ListUsers, UpdateUser, User};
use verdict_contracts::idempotency::Keyed;
use verdict_contracts::page::{Page, PageRequest};

use crate::extract::{path_id, ApiJson, Authenticated, IdempotencyKeyHeader};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Create a user.
#[utoipa::path(operation_id = "create_user", post, path = "/api/v1/users", tag = "users", security(("bearer" = [])), request_body = CreateUser,
    params(("Idempotency-Key" = Option<String>, Header, description = "the same key and body within 24 h get the first answer, another body 422")),
    responses((status = 201, description = "Created", body = User), (status = 403, description = "The caller's role does not allow this", body = Problem), (status = 409, description = "E-mail taken", body = Problem),
        (status = 422, description = "The Idempotency-Key was used for another request", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let user = state
        .bus
        .request_as(&auth::CREATE_USER, &Keyed::new(body, key), &principal)
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// A disabled user cannot sign in, and every token they hold stops working at once.
    pub disabled: bool,
}

/// Disable or re-enable a user.
#[utoipa::path(operation_id = "update_user", patch, path = "/api/v1/users/{user_id}", tag = "users", security(("bearer" = [])), request_body = UserChange,
    params(("user_id" = String, Path)),
    responses((status = 200, description = "OK", body = User), (status = 403, description = "The caller's role does not allow this", body = Problem), (status = 404, description = "Not found, or not visible to the caller", body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<UserChange>,
) -> Result<Json<User>, ApiError> {
    let request = UpdateUser {
        user_id: path_id(&user_id, "user not found")?,
        disabled: body.disabled,
    };
    state.answer(&auth::UPDATE_USER, &request, &principal).await
}

/// Every user, by id (administrators).
#[utoipa::path(operation_id = "list_users", get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    params(PageRequest),
    responses((status = 200, description = "OK", body = Page<User>), (status = 403, description = "The caller's role does not allow this", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<User>>, ApiError> {
    state
        .answer(&auth::LIST_USERS, &ListUsers { page }, &principal)
        .await
}
