//! The dashboard: server-rendered pages (maud), small JavaScript modules for live
//! updates and SVG charts drawn on the server, every asset embedded in the binary.
//!
//! The gateway mounts [`router`] on the API's origin. Pages read data over the bus with
//! the same typed operations as the API routes, on behalf of the browser session's
//! principal; they never call the HTTP API.

mod assets;
mod charts;
mod error;
mod format;
mod pages;
mod session;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use verdict_bus::Bus;
use verdict_contracts::auth::Principal;

pub use session::{access_token_from_cookies, SECURE_SESSION_COOKIE, SESSION_COOKIE};

/// Why an access token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Invalid, expired or revoked: a refresh may help.
    Refused,
    /// The auth service did not answer.
    Unavailable,
}

/// What the dashboard needs from the edge it is mounted on: the same token checks as
/// the API's bearer authentication, and the client address behind trusted proxies.
pub trait Edge: Send + Sync + 'static {
    fn authenticate<'a>(
        &'a self,
        access_token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, AuthFailure>> + Send + 'a>>;

    fn client_address(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr;
}

/// How the dashboard is reached.
#[derive(Debug, Clone, Default)]
pub struct WebSettings {
    /// `VERDICT_PUBLIC_URL`: the origin browsers use. Its scheme decides whether cookies
    /// are `Secure` (behind a TLS-terminating proxy the gateway itself sees plain HTTP).
    pub public_url: Option<String>,
}

/// Everything a page handler reaches. Cheap to clone.
#[derive(Clone)]
pub struct Web {
    bus: Bus,
    edge: Arc<dyn Edge>,
    site: Arc<session::Site>,
    refreshes: Arc<session::Refreshes>,
    /// Reads the head of text artifacts for their preview.
    blobs: reqwest::Client,
}

impl Web {
    pub fn new(bus: Bus, edge: Arc<dyn Edge>, settings: &WebSettings) -> Self {
        Self {
            bus,
            edge,
            site: Arc::new(session::Site::new(settings.public_url.as_deref())),
            refreshes: Arc::default(),
            blobs: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(3))
                .build()
                .unwrap_or_default(),
        }
    }
}

impl Web {
    /// Whether a browser's `Origin` is the dashboard's own (for the live socket, which a
    /// page of another site must not open with the session cookie).
    pub fn is_own_origin(&self, origin: &str, headers: &HeaderMap) -> bool {
        self.site.is_own_origin(origin, headers)
    }
}

/// Bytes of script and style the dashboard ships, uncompressed (its budget is 100 KiB).
pub fn shipped_asset_bytes() -> usize {
    assets::shipped_bytes()
}

/// The dashboard's routes, for any outer state: pages, forms and fingerprinted assets.
pub fn router<S: Clone + Send + Sync + 'static>(web: Web) -> Router<S> {
    let pages = Router::new()
        .route("/", get(pages::home::show))
        .route("/login", get(pages::login::show).post(pages::login::submit))
        .route(
            "/logout",
            get(pages::login::show_logout).post(pages::login::logout),
        )
        .route("/session", get(pages::login::check))
        .route("/projects/{slug}", get(pages::project::show))
        .route("/projects/{slug}/flaky", get(pages::flaky::show))
        .route("/projects/{slug}/tests/{test_key}", get(pages::test::show))
        .route("/projects/{slug}/settings", get(pages::settings::show))
        .route(
            "/projects/{slug}/settings/tokens",
            post(pages::settings::create_token),
        )
        .route(
            "/projects/{slug}/settings/tokens/{id}/revoke",
            post(pages::settings::revoke_token),
        )
        .route(
            "/projects/{slug}/settings/members",
            post(pages::settings::put_member),
        )
        .route(
            "/projects/{slug}/settings/members/{user_id}/remove",
            post(pages::settings::remove_member),
        )
        .route("/runs/{id}", get(pages::run::show))
        .route("/artifacts/{id}/view", get(pages::run::artifact))
        .route(
            "/admin/users",
            get(pages::admin::show).post(pages::admin::create_user),
        )
        .route("/admin/users/{id}/access", post(pages::admin::set_disabled))
        .layer(axum::middleware::from_fn_with_state(
            web.clone(),
            session::resolve,
        ));
    Router::new()
        .route("/assets/{name}", get(assets::serve))
        .merge(pages)
        .with_state(web)
}
