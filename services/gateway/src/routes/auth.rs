//! Sign-in and the caller's profile.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use verdict_contracts::auth::{
    self, Jwks, LoginAttempt, LoginRequest, Me, RefreshRequest, TokenPair,
};
use verdict_contracts::system::Empty;

use crate::extract::{ApiJson, Authenticated};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Exchange e-mail and password for an access and a refresh token.
#[utoipa::path(operation_id = "login", post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "OK", body = TokenPair),
        (status = 400, description = "Not an e-mail address, or a password over 1024 bytes (never hashed)", body = Problem),
        (status = 401, description = "Wrong e-mail or password", body = Problem),
        (status = 429, description = "Too many attempts from this address, or too many failed ones for this e-mail from it; see Retry-After", body = Problem),
        (status = 503, description = "Too many sign-ins at once; see Retry-After", body = Problem),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(credentials): ApiJson<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    // Failed logins count per account and client address: an attacker elsewhere cannot
    // lock the owner out.
    let attempt = LoginAttempt {
        credentials,
        client_address: Some(state.settings.trusted_proxies.client(peer.ip(), &headers)),
    };
    Ok(Json(state.bus.request(&auth::LOGIN, &attempt).await?))
}

/// Exchange a refresh token for new tokens; the presented one is spent. Presenting a
/// spent token ends the whole session.
#[utoipa::path(operation_id = "refresh", post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, description = "OK", body = TokenPair), (status = 401, description = "Not authenticated", body = Problem)))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(state.bus.request(&auth::REFRESH, &body).await?))
}

/// End the session of a refresh token; its access tokens stop working on every gateway.
#[utoipa::path(operation_id = "logout", post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "Signed out")))]
pub async fn logout(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    let Empty {} = state.bus.request(&auth::LOGOUT, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user and their projects.
#[utoipa::path(operation_id = "me", get, path = "/api/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "OK", body = Me), (status = 401, description = "Not authenticated", body = Problem), (status = 403, description = "Called with an API token", body = Problem)))]
pub async fn me(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Me>, ApiError> {
    state.answer(&auth::ME, &Empty {}, &principal).await
}

/// The public keys access tokens are signed with (RFC 7517).
#[utoipa::path(operation_id = "jwks", get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "OK", body = Jwks)))]
pub async fn jwks(State(state): State<AppState>) -> Result<Json<Jwks>, ApiError> {
    Ok(Json(state.bus.request(&auth::JWKS, &Empty {}).await?))
}
