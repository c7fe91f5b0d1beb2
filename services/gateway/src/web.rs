//! The dashboard (`verdict-web`) on the API's origin: its pages authenticate the browser
//! session's access token exactly as the API authenticates a bearer token.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use axum::http::HeaderMap;
use verdict_contracts::auth::Principal;
use verdict_web::{AuthFailure, Edge};

use crate::auth::{AuthError, Authenticator};
use crate::client_ip::TrustedProxies;

pub struct GatewayEdge {
    pub auth: Arc<Authenticator>,
    pub trusted_proxies: TrustedProxies,
}

impl Edge for GatewayEdge {
    fn authenticate<'a>(
        &'a self,
        access_token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, AuthFailure>> + Send + 'a>> {
        Box::pin(async move {
            let header = format!("Bearer {access_token}");
            match self.auth.authenticate(Some(&header)).await {
                Ok(principal) => Ok(principal),
                Err(AuthError::Unavailable(_)) => Err(AuthFailure::Unavailable),
                Err(_) => Err(AuthFailure::Refused),
            }
        })
    }

    fn client_address(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        self.trusted_proxies.client(peer.ip(), headers)
    }
}
