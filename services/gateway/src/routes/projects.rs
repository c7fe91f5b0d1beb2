//! Projects and their members.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use verdict_contracts::auth::{
    self, AddMember, CreateProject, DeleteMember, ListMembers, ListProjects, Member, MemberInfo,
    NewMember, Project, ProjectRef, PutMember, Role,
};
use verdict_contracts::idempotency::Keyed;
use verdict_contracts::page::{Page, PageRequest};
use verdict_contracts::system::Empty;

use crate::extract::{path_id, ApiJson, Authenticated, IdempotencyKeyHeader};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Create a project; the caller becomes its owner.
#[utoipa::path(operation_id = "create_project", post, path = "/api/v1/projects", tag = "projects", security(("bearer" = [])), request_body = CreateProject,
    params(("Idempotency-Key" = Option<String>, Header, description = "the same key and body within 24 h get the first answer, another body 422")),
    responses((status = 201, description = "Created", body = Project), (status = 409, description = "Slug taken", body = Problem),
        (status = 422, description = "The Idempotency-Key was used for another request", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(body): ApiJson<CreateProject>,
) -> Result<(StatusCode, Json<Project>), ApiError> {
    let project = state
        .bus
        .request_as(&auth::CREATE_PROJECT, &Keyed::new(body, key), &principal)
        .await?;
    Ok((StatusCode::CREATED, Json(project)))
}

/// The caller's projects (every project for administrators).
#[utoipa::path(operation_id = "list_projects", get, path = "/api/v1/projects", tag = "projects", security(("bearer" = [])), params(PageRequest),
    responses((status = 200, description = "OK", body = Page<Project>)))]
pub async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<Project>>, ApiError> {
    state
        .answer(&auth::LIST_PROJECTS, &ListProjects { page }, &principal)
        .await
}

/// A project by id or slug.
#[utoipa::path(operation_id = "get_project", get, path = "/api/v1/projects/{project}", tag = "projects", security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug")),
    responses((status = 200, description = "OK", body = Project), (status = 404, description = "Not found, or not visible to the caller", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(project): Path<String>,
) -> Result<Json<Project>, ApiError> {
    state
        .answer(&auth::GET_PROJECT, &ProjectRef { project }, &principal)
        .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRole {
    pub role: Role,
}

/// Add a member or change their role (maintainer or owner).
#[utoipa::path(operation_id = "put_member", put, path = "/api/v1/projects/{project}/members/{user_id}", tag = "projects", security(("bearer" = [])),
    request_body = MemberRole,
    params(("project" = String, Path, description = "id or slug"), ("user_id" = String, Path)),
    responses((status = 200, description = "OK", body = Member), (status = 403, description = "The caller's role does not allow this", body = Problem), (status = 404, description = "Not found, or not visible to the caller", body = Problem)))]
pub async fn put_member(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((project, user_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<MemberRole>,
) -> Result<Json<Member>, ApiError> {
    let request = PutMember {
        project,
        user_id: path_id(&user_id, "user not found")?,
        role: body.role,
    };
    state.answer(&auth::PUT_MEMBER, &request, &principal).await
}

/// Remove a member (maintainer or owner).
#[utoipa::path(operation_id = "delete_member", delete, path = "/api/v1/projects/{project}/members/{user_id}", tag = "projects", security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"), ("user_id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 403, description = "The caller's role does not allow this", body = Problem), (status = 404, description = "Not found, or not visible to the caller", body = Problem)))]
pub async fn delete_member(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path((project, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let Empty {} = state
        .bus
        .request_as(
            &auth::DELETE_MEMBER,
            &DeleteMember {
                project,
                user_id: path_id(&user_id, "member not found")?,
            },
            &principal,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A project's members with their e-mail addresses and names, by user id (maintainer or
/// owner).
#[utoipa::path(operation_id = "list_members", get, path = "/api/v1/projects/{project}/members", tag = "projects", security(("bearer" = [])),
    params(("project" = String, Path, description = "id or slug"), PageRequest),
    responses((status = 200, description = "OK", body = Page<MemberInfo>), (status = 403, description = "The caller's role does not allow this", body = Problem), (status = 404, description = "Not found, or not visible to the caller", body = Problem)))]
pub async fn list_members(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(project): Path<String>,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<MemberInfo>>, ApiError> {
    state
        .answer(
            &auth::LIST_MEMBERS,
            &ListMembers { project, page },
            &principal,
        )
        .await
}

/// Add a member by e-mail address, or change their role (maintainer or owner); 404 when
/// no user has that address.
#[utoipa::path(operation_id = "add_member", post, path = "/api/v1/projects/{project}/members", tag = "projects", security(("bearer" = [])),
    request_body = NewMember, params(("project" = String, Path, description = "id or slug")),
    responses((status = 200, description = "OK", body = Member), (status = 403, description = "The caller's role does not allow this", body = Problem), (status = 404, description = "No such project or user, or not visible to the caller", body = Problem)))]
pub async fn add_member(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(project): Path<String>,
    ApiJson(member): ApiJson<NewMember>,
) -> Result<Json<Member>, ApiError> {
    state
        .answer(
            &auth::ADD_MEMBER,
            &AddMember { project, member },
            &principal,
        )
        .await
}
