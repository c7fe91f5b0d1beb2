//! API tokens of a project (maintainer or owner).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use verdict_contracts::auth::{
    self, CreateToken, CreatedToken, DisplayName, ListTokens, RevokeToken, Role, TokenInfo,
};
use verdict_contracts::idempotency::Keyed;
use verdict_contracts::page::{Page, PageRequest};
use verdict_contracts::system::Empty;

use crate::extract::{path_id, ApiJson, Authenticated, IdempotencyKeyHeader};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: DisplayName,
    pub role: Role,
    /// RFC 3339; omit for a token that never expires.
    pub expires_at: Option<String>,
}

/// Create an API token. The secret is in this response only.
#[utoipa::path(operation_id = "create_token", post, path = "/api/v1/projects/{project}/tokens", tag = "tokens", security(("bearer" = [])), request_body = NewToken,
    params(("project" = String, Path, description = "id or slug"),
        ("Idempotency-Key" = Option<String>, Header, description = "the same key and body within 24 h get the first answer (the same token), another body 422")),
    responses((status = 201, description = "Created", body = CreatedToken), (status = 403, description = "The caller's role does not allow this", body = Problem), (status = 404, description = "Not found, or not visible to the caller", body = Problem),
        (status = 422, description = "The Idempotency-Key was used for another request", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(project): Path<String>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let request = CreateToken {
        project,
        name: body.name,
        role: body.role,
        expires_at: body.expires_at,
    };
    let token = state
        .bus
        .request_as(&auth::CREATE_TOKEN, &Keyed::new(request, key), &principal)
        .await?;
    Ok((StatusCode::CREATED, Json(token)))
}

/// The project's live tokens, without secrets.
#[utoipa::path(operation_id = "list_tokens", get, path = "/api/v1/projects/{project}/tokens", tag = "tokens", security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"), PageRequest),
    responses((status = 200, description = "OK", body = Page<TokenInfo>), (status = 403, description = "The caller's role does not allow this", body = Problem), (status = 404, description = "Not found, or not visible to the caller", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(project): Path<String>,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<TokenInfo>>, ApiError> {
    state
        .answer(
            &auth::LIST_TOKENS,
            &ListTokens { project, page },
            &principal,
        )
        .await
}

/// Revoke a token; it stops working on every gateway at once.
#[utoipa::path(operation_id = "revoke_token", delete, path = "/api/v1/projects/{project}/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"), ("id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 403, description = "The caller's role does not allow this", body = Problem), (status = 404, description = "Not found, or not visible to the caller", body = Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((project, token_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let Empty {} = state
        .bus
        .request_as(
            &auth::REVOKE_TOKEN,
            &RevokeToken {
                project,
                token_id: path_id(&token_id, "token not found")?,
            },
            &principal,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
