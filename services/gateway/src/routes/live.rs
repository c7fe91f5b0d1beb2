//! `GET /api/v1/live[?encoding=text|deflate]`: the WebSocket upgrade. The session does
//! the rest.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::extract::QueryParams;
use crate::live::{Encoding, Handshake, Session, Token};
use crate::problem::ApiError;
use crate::state::AppState;

/// Buffers per socket: client messages and the server's own replies are small (channel
/// frames bypass the write buffer), so kilobytes do; tungstenite's 128 KiB defaults
/// would cost gigabytes at 10 000 sockets.
const READ_BUFFER: usize = 4 * 1024;
const WRITE_BUFFER: usize = 8 * 1024;

pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    query: QueryParams,
    headers: HeaderMap,
    handshake: Handshake,
) -> Result<Response, ApiError> {
    let encoding = encoding(query)?;
    let live = state.live.clone();
    let client = state.settings.trusted_proxies.client(peer.ip(), &headers);
    let ip = live.claim_ip(client).ok_or(ApiError::TooManySockets(
        "too many live sockets from this address",
    ))?;
    let bearer = match headers.get(header::AUTHORIZATION) {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::BadRequest("the Authorization header is not text".into()))?
                .to_owned(),
        ),
        None => session_token(&state, &headers)?.map(|token| format!("Bearer {token}")),
    };
    let authenticated = match bearer.as_deref() {
        None => None,
        Some(value) => {
            let principal = state.auth.authenticate(Some(value)).await?;
            let slot = live
                .claim_principal(&principal)
                .ok_or(ApiError::TooManySockets(
                    "too many live sockets for this principal",
                ))?;
            let token = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .unwrap_or(value)
                .trim()
                .to_owned();
            Some((principal, Token::new(token), slot))
        }
    };
    let limit = live.settings.message_limit;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    Ok(handshake.accept(config, move |socket| {
        let session = Session::new(live.clone(), socket, encoding, authenticated, ip);
        live.track(session)
    }))
}

/// The access token of a dashboard session's cookie. A browser sends cookies with a
/// WebSocket opened by any site's page, so the socket's `Origin` must be the API's own
/// or one of `VERDICT_CORS_ORIGINS` (against cross-site WebSocket hijacking).
fn session_token(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(token) = verdict_web::access_token_from_cookies(headers) else {
        return Ok(None);
    };
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
        .ok_or(ApiError::Forbidden(
            "a live socket authenticated by a session cookie needs an Origin",
        ))?;
    let allowed = state.web.is_own_origin(origin, headers)
        || state
            .settings
            .cors_origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin));
    if !allowed {
        return Err(ApiError::Forbidden(
            "this origin may not open a live socket with a session cookie",
        ));
    }
    Ok(Some(token))
}

/// The `encoding` parameter, the only one this route takes.
fn encoding(mut query: QueryParams) -> Result<Encoding, ApiError> {
    let encoding = match query.take("encoding") {
        Some(value) => Encoding::parse(&value)
            .ok_or_else(|| ApiError::invalid("encoding", "must be text or deflate"))?,
        None => Encoding::default(),
    };
    query.finish()?;
    Ok(encoding)
}
