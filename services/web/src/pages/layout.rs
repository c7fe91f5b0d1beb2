//! The frame of every page and the headers pages are sent with.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use crate::assets;

/// What the header of a page offers.
pub enum Nav<'a> {
    /// Error pages and the sign-in page: no session to show.
    Minimal,
    SignedIn {
        csrf: &'a str,
        project: Option<&'a str>,
    },
}

/// A complete HTML page.
pub struct Page {
    title: String,
    head: Markup,
    body: Markup,
    status: StatusCode,
    /// Origins (besides this one) that images and videos of this page come from: the
    /// blob store's, for artifact previews.
    media_origins: Vec<String>,
    /// A channel the page's script keeps up to date over the live socket.
    live: Option<String>,
}

impl Page {
    pub fn new(title: impl Into<String>, nav: Nav<'_>, body: Markup) -> Self {
        Self {
            title: title.into(),
            head: header(&nav),
            body,
            status: StatusCode::OK,
            media_origins: Vec::new(),
            live: None,
        }
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn media_from(mut self, origins: Vec<String>) -> Self {
        self.media_origins = origins;
        self
    }

    /// Loads the live script, which follows `channel`.
    pub fn live(mut self, channel: String) -> Self {
        self.live = Some(channel);
        self
    }

    fn csp(&self) -> String {
        let media = self.media_origins.join(" ");
        // No inline script or style anywhere: every script and style sheet is one of our
        // fingerprinted files. The live socket is same-origin (`'self'` covers ws: and
        // wss: of this host in CSP 3).
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: {media}; \
             media-src 'self' {media}; connect-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'"
        )
    }
}

fn header(nav: &Nav<'_>) -> Markup {
    html! {
        header.top {
            a.brand href="/" { "Verdict" }
            @if let Nav::SignedIn { csrf, project } = nav {
                nav aria-label="Main" {
                    a href="/" { "Projects" }
                    @if let Some(slug) = project {
                        a href={ "/projects/" (slug) } { "Runs" }
                        a href={ "/projects/" (slug) "/flaky" } { "Flaky tests" }
                        a href={ "/projects/" (slug) "/settings" } { "Settings" }
                    }
                }
                form.signout method="post" action="/logout" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Sign out" }
                }
            }
        }
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let csp = self.csp();
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · Verdict" }
                    link rel="stylesheet" href=(assets::url(assets::STYLE));
                    @if self.live.is_some() {
                        script type="module" src=(assets::url(assets::LIVE)) {}
                    }
                }
                body data-live=[self.live.as_deref()] {
                    a.skip href="#main" { "Skip to content" }
                    (self.head)
                    main #main tabindex="-1" { (self.body) }
                }
            }
        };
        let mut response = (self.status, markup.into_string()).into_response();
        let headers = response.headers_mut();
        let fixed = [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Nothing private stays in a cache, nor comes back with the back button
            // after signing out.
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            // Same-origin, so form posts carry an `Origin` (under `no-referrer` a browser
            // sends `Origin: null`) and nothing leaks to other sites.
            (header::REFERRER_POLICY, "same-origin"),
        ];
        for (name, value) in fixed {
            headers.insert(name, HeaderValue::from_static(value));
        }
        if let Ok(value) = HeaderValue::from_str(&csp) {
            headers.insert(header::CONTENT_SECURITY_POLICY, value);
        }
        response
    }
}
