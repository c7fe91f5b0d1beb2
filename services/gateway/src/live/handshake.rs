//! The WebSocket opening handshake of `GET /api/v1/live` (RFC 6455, section 4.2). It is
//! done here rather than by axum so that the session owns tungstenite's stream and can
//! write shared frames to the connection itself (`wire.rs`); a request that is not a
//! WebSocket upgrade gets a problem document naming what is missing.

use std::future::Future;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::problem::ApiError;

/// A live socket once upgraded.
pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// A valid upgrade request, ready to be answered.
pub struct Handshake {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Handshake {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let headers = &parts.headers;
        if !has_token(headers, header::CONNECTION, "upgrade") {
            return Err(not_websocket("`Connection: upgrade`"));
        }
        if !has_token(headers, header::UPGRADE, "websocket") {
            return Err(not_websocket("`Upgrade: websocket`"));
        }
        if !has_token(headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(not_websocket("`Sec-WebSocket-Version: 13`"));
        }
        let accept = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .map(|key| derive_accept_key(key.as_bytes()))
            .and_then(|accept| HeaderValue::try_from(accept).ok())
            .ok_or_else(|| not_websocket("a `Sec-WebSocket-Key`"))?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or_else(|| ApiError::BadRequest("this connection cannot be upgraded".into()))?;
        Ok(Self { accept, on_upgrade })
    }
}

impl Handshake {
    /// The `101 Switching Protocols` answer; once the connection is switched, `session`
    /// runs on the socket. A client gone before that is no one's concern.
    pub fn accept<F, Fut>(self, config: WebSocketConfig, session: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let io = TokioIo::new(upgraded);
                let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                session(socket).await;
            }
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept);
        response
    }
}

fn not_websocket(missing: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "/api/v1/live is a WebSocket: the request needs {missing}"
    ))
}

/// Whether the header lists `token` among its comma-separated values, in any case.
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|value| {
            value
                .split(',')
                .any(|item| item.trim().eq_ignore_ascii_case(token))
        })
    })
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::get("/api/v1/live");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        // No hyper upgrade handle: only a real connection has one (tests/tests/e2e/live.rs).
        request.body(()).unwrap().into_parts().0
    }

    const UPGRADE: [(&str, &str); 4] = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    async fn refusal(headers: &[(&str, &str)]) -> String {
        match Handshake::from_request_parts(&mut parts(headers), &()).await {
            Err(ApiError::BadRequest(message)) => message,
            Err(other) => panic!("unexpected refusal: {other}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[tokio::test]
    async fn a_plain_get_is_told_the_route_is_a_websocket() {
        let message = refusal(&[]).await;
        assert_eq!(
            message,
            "/api/v1/live is a WebSocket: the request needs `Connection: upgrade`"
        );
    }

    #[tokio::test]
    async fn each_missing_upgrade_header_is_named() {
        for (missing, named) in [
            ("upgrade", "`Upgrade: websocket`"),
            ("sec-websocket-version", "`Sec-WebSocket-Version: 13`"),
            ("sec-websocket-key", "a `Sec-WebSocket-Key`"),
        ] {
            let headers: Vec<_> = UPGRADE
                .into_iter()
                .filter(|(name, _)| *name != missing)
                .collect();
            assert!(refusal(&headers).await.ends_with(named), "{missing}");
        }
    }

    #[tokio::test]
    async fn a_valid_upgrade_without_a_connection_to_switch_is_refused() {
        let message = refusal(&UPGRADE).await;
        assert_eq!(message, "this connection cannot be upgraded");
    }

    #[test]
    fn header_tokens_match_in_any_case_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(has_token(&headers, header::CONNECTION, "upgrade"));
        assert!(!has_token(&headers, header::CONNECTION, "close"));
    }
}
