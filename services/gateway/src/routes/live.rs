//! `GET /api/v1/live`: the WebSocket upgrade. The session does the rest.

use std::net::SocketAddr;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;

use crate::live::{Session, Token};
use crate::problem::ApiError;
use crate::state::AppState;

/// Buffers per socket: frames are small and written as they come, so kilobytes do;
/// tungstenite's 128 KiB defaults would cost gigabytes at 10 000 sockets.
const READ_BUFFER: usize = 4 * 1024;
const WRITE_BUFFER: usize = 8 * 1024;

pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let live = state.live.clone();
    let client = state.settings.trusted_proxies.client(peer.ip(), &headers);
    let ip = live.claim_ip(client).ok_or(ApiError::TooManySockets(
        "too many live sockets from this address",
    ))?;
    let authenticated = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| ApiError::BadRequest("the Authorization header is not text".into()))?;
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
    Ok(upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| {
            let session = Session::new(live.clone(), socket, authenticated, ip);
            live.track(session)
        }))
}
