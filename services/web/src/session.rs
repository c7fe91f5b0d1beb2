//! Browser sessions: one HttpOnly cookie holding the access token, the refresh token and
//! the session's CSRF token; refreshed through auth's REFRESH when the access token is
//! no longer accepted; every state-changing request checked for its origin.
//!
//! The CSRF token is made at sign-in and kept in the session cookie, which scripts can
//! neither read nor write: a form must carry the same value (a synchronizer token that
//! lives client-side), so it is bound to that sign-in and survives refreshes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use verdict_bus::RequestError;
use verdict_contracts::auth::{self, Principal, RefreshRequest, TokenPair};
use verdict_contracts::ErrorCode;

use crate::error::WebError;
use crate::{AuthFailure, Web};

/// The session cookie over plain HTTP.
pub const SESSION_COOKIE: &str = "verdict_session";
/// Over HTTPS: the `__Host-` prefix makes browsers refuse it unless it is `Secure`,
/// host-only and for `/`, so no sibling subdomain can plant one.
pub const SECURE_SESSION_COOKIE: &str = "__Host-verdict_session";
/// The sign-in form's own CSRF token, before there is a session.
const LOGIN_COOKIE: &str = "verdict_login";
const SECURE_LOGIN_COOKIE: &str = "__Host-verdict_login";
/// Separates the parts of the session cookie: not in base64url, JWTs or refresh tokens.
const SEPARATOR: char = '~';
const VERSION: &str = "v1";
/// How long a refresh's answer is kept for requests that arrive with the tokens it
/// replaced (parallel requests of one page, several tabs): a refresh token is spent by
/// its first use, and presenting it again would end the whole session.
const REFRESH_MEMORY: Duration = Duration::from_secs(60);

/// Where the dashboard is served, as far as cookies and origin checks care.
pub struct Site {
    /// `scheme://host[:port]` from `VERDICT_PUBLIC_URL`; otherwise the request's `Host`
    /// over plain HTTP.
    origin: Option<String>,
    secure: bool,
}

impl Site {
    pub fn new(public_url: Option<&str>) -> Self {
        let origin = public_url.and_then(origin_of);
        let secure = origin
            .as_deref()
            .is_some_and(|origin| origin.starts_with("https://"));
        Self { origin, secure }
    }

    /// Whether `claimed` (an `Origin` header value) is this site: `VERDICT_PUBLIC_URL`'s
    /// origin, or without it the requested `Host` over either scheme (a proxy in front
    /// may terminate TLS).
    pub fn is_own_origin(&self, claimed: &str, headers: &HeaderMap) -> bool {
        if let Some(origin) = &self.origin {
            return claimed.eq_ignore_ascii_case(origin);
        }
        let host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .filter(|host| !host.is_empty());
        let authority = claimed
            .strip_prefix("http://")
            .or_else(|| claimed.strip_prefix("https://"));
        matches!((host, authority), (Some(host), Some(authority)) if host.eq_ignore_ascii_case(authority))
    }

    fn session_cookie(&self) -> &'static str {
        if self.secure {
            SECURE_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        }
    }

    fn login_cookie(&self) -> &'static str {
        if self.secure {
            SECURE_LOGIN_COOKIE
        } else {
            LOGIN_COOKIE
        }
    }

    fn cookie(&self, name: &str, value: &str, same_site: &str, max_age: Option<u32>) -> String {
        let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
        if let Some(age) = max_age {
            cookie.push_str(&format!("; Max-Age={age}"));
        }
        if self.secure {
            cookie.push_str("; Secure");
        }
        cookie
    }

    /// Lax, so a link to a run pasted in a chat opens signed in; every state change is a
    /// POST that needs the CSRF token and a same-origin `Origin` anyway.
    pub fn set_session(&self, tokens: &Tokens) -> String {
        self.cookie(self.session_cookie(), &tokens.encode(), "Lax", None)
    }

    pub fn clear_session(&self) -> String {
        self.cookie(self.session_cookie(), "", "Lax", Some(0))
    }

    pub fn set_login(&self, token: &str) -> String {
        self.cookie(self.login_cookie(), token, "Strict", Some(3600))
    }

    pub fn clear_login(&self) -> String {
        self.cookie(self.login_cookie(), "", "Strict", Some(0))
    }

    pub fn login_token(&self, headers: &HeaderMap) -> Option<String> {
        cookie(headers, self.login_cookie())
    }

    /// Whether a state-changing request comes from a page of this site: its `Origin`
    /// (or, when a browser sends none, its `Referer`) must be this origin.
    fn same_origin(&self, headers: &HeaderMap) -> bool {
        let claimed = headers
            .get(header::ORIGIN)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                headers
                    .get(header::REFERER)
                    .and_then(|value| value.to_str().ok())
                    .and_then(origin_of)
            });
        claimed.is_some_and(|claimed| self.is_own_origin(&claimed, headers))
    }
}

/// `scheme://authority` of an absolute http(s) URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

/// The value of a cookie in the request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// The access token of a browser session, for the live route: the socket is
/// authenticated with it like with a bearer token.
pub fn access_token_from_cookies(headers: &HeaderMap) -> Option<String> {
    [SECURE_SESSION_COOKIE, SESSION_COOKIE]
        .into_iter()
        .find_map(|name| cookie(headers, name))
        .and_then(|value| Tokens::decode(&value))
        .map(|tokens| tokens.access)
}

/// A random token for a form: 32 bytes, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// What the session cookie holds.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub csrf: String,
}

impl Tokens {
    pub fn new(pair: TokenPair, csrf: String) -> Self {
        Self {
            access: pair.access_token,
            refresh: pair.refresh_token,
            csrf,
        }
    }

    fn encode(&self) -> String {
        format!(
            "{VERSION}{SEPARATOR}{}{SEPARATOR}{}{SEPARATOR}{}",
            self.access, self.refresh, self.csrf
        )
    }

    fn decode(value: &str) -> Option<Self> {
        let mut parts = value.split(SEPARATOR);
        let (version, access, refresh, csrf) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let usable = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        (version == VERSION
            && parts.next().is_none()
            && [access, refresh, csrf].into_iter().all(usable))
        .then(|| Self {
            access: access.to_owned(),
            refresh: refresh.to_owned(),
            csrf: csrf.to_owned(),
        })
    }
}

/// A signed-in browser.
#[derive(Clone)]
pub struct Session {
    pub principal: Principal,
    pub tokens: Tokens,
}

impl Session {
    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), WebError> {
        if same_secret(submitted, &self.tokens.csrf) {
            Ok(())
        } else {
            Err(WebError::CrossSite)
        }
    }
}

/// What the request's cookie said, for handlers.
#[derive(Clone)]
pub enum Visitor {
    SignedIn(Session),
    Anonymous,
}

/// A refresh's answer and when it came: new tokens, or `Err` when the token was refused.
type Refreshed = (Instant, Result<TokenPair, ()>);

/// Answers of recent refreshes, keyed by the hash of the refresh token they spent.
#[derive(Default)]
pub struct Refreshes {
    done: tokio::sync::Mutex<HashMap<[u8; 32], Refreshed>>,
}

impl Refreshes {
    /// Refreshes once per refresh token: concurrent and later requests with the same
    /// spent token get the same new tokens (or the same refusal) for a minute.
    async fn refresh(&self, web: &Web, refresh_token: &str) -> Result<TokenPair, WebError> {
        let key: [u8; 32] = Sha256::digest(refresh_token.as_bytes()).into();
        // Held across the request: refreshes are rare (one per access token lifetime
        // per browser) and must not race each other.
        let mut done = self.done.lock().await;
        done.retain(|_, (at, _)| at.elapsed() < REFRESH_MEMORY);
        if let Some((_, answer)) = done.get(&key) {
            return answer.clone().map_err(|()| WebError::SignedOut);
        }
        let request = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        let answer = match web.bus.request(&auth::REFRESH, &request).await {
            Ok(pair) => Ok(pair),
            Err(RequestError::Service(error)) if error.code == ErrorCode::Unauthorized => Err(()),
            Err(other) => return Err(WebError::from(other)),
        };
        done.insert(key, (Instant::now(), answer.clone()));
        answer.map_err(|()| WebError::SignedOut)
    }
}

/// What the session resolution decided about the cookie.
enum CookieChange {
    Keep,
    Set(Tokens),
    Clear,
}

/// Checks the origin of state-changing requests, establishes the visitor from the
/// session cookie (refreshing it when its access token is no longer accepted), and
/// sends the renewed or cleared cookie with the answer.
pub async fn resolve(State(web): State<Web>, mut request: Request, next: Next) -> Response {
    let changes_state = !matches!(*request.method(), Method::GET | Method::HEAD);
    if changes_state && !web.site.same_origin(request.headers()) {
        return WebError::CrossSite.into_response();
    }
    let (visitor, change) = match visitor(&web, request.headers()).await {
        Ok(resolved) => resolved,
        Err(error) => return error.into_response(),
    };
    request.extensions_mut().insert(visitor);
    let mut response = next.run(request).await;
    let cookie = match change {
        CookieChange::Keep => None,
        CookieChange::Set(tokens) => Some(web.site.set_session(&tokens)),
        CookieChange::Clear => Some(web.site.clear_session()),
    };
    // A handler that signed in or out set the session cookie itself.
    let session_cookie = format!("{}=", web.site.session_cookie());
    let handled = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|value| value.as_bytes().starts_with(session_cookie.as_bytes()));
    if let Some(cookie) = cookie.filter(|_| !handled) {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

async fn visitor(web: &Web, headers: &HeaderMap) -> Result<(Visitor, CookieChange), WebError> {
    let Some(value) = cookie(headers, web.site.session_cookie()) else {
        return Ok((Visitor::Anonymous, CookieChange::Keep));
    };
    let Some(tokens) = Tokens::decode(&value) else {
        return Ok((Visitor::Anonymous, CookieChange::Clear));
    };
    match web.edge.authenticate(&tokens.access).await {
        Ok(principal) => {
            return Ok((
                Visitor::SignedIn(Session { principal, tokens }),
                CookieChange::Keep,
            ))
        }
        Err(AuthFailure::Unavailable) => return Err(WebError::Unavailable),
        Err(AuthFailure::Refused) => {}
    }
    let pair = match web.refreshes.refresh(web, &tokens.refresh).await {
        Ok(pair) => pair,
        Err(WebError::SignedOut) => return Ok((Visitor::Anonymous, CookieChange::Clear)),
        Err(other) => return Err(other),
    };
    let renewed = Tokens::new(pair, tokens.csrf);
    match web.edge.authenticate(&renewed.access).await {
        Ok(principal) => Ok((
            Visitor::SignedIn(Session {
                principal,
                tokens: renewed.clone(),
            }),
            CookieChange::Set(renewed),
        )),
        Err(AuthFailure::Unavailable) => Err(WebError::Unavailable),
        Err(AuthFailure::Refused) => Ok((Visitor::Anonymous, CookieChange::Clear)),
    }
}

/// The visitor of a request that went through [`resolve`].
pub fn visitor_of(parts: &Parts) -> Visitor {
    parts
        .extensions
        .get::<Visitor>()
        .cloned()
        .unwrap_or(Visitor::Anonymous)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn tokens() -> Tokens {
        Tokens {
            access: "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2ln".into(),
            refresh: "vdr_abc-DEF_123".into(),
            csrf: random_token(),
        }
    }

    #[test]
    fn the_session_cookie_round_trips_its_tokens() {
        let tokens = tokens();
        assert!(Tokens::decode(&tokens.encode()) == Some(tokens));
    }

    #[test]
    fn a_tampered_session_cookie_is_not_a_session() {
        let encoded = tokens().encode();
        for bad in [
            "",
            "v1~a~b",
            "v2~a~b~c",
            "v1~a~b~c~d",
            "v1~a b~b~c",
            "v1~~b~c",
            &encoded.replace("v1", "v0"),
        ] {
            assert!(Tokens::decode(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_live_route_finds_the_access_token_under_either_cookie_name() {
        let tokens = tokens();
        for name in [SESSION_COOKIE, SECURE_SESSION_COOKIE] {
            let header = format!("other=1; {name}={}", tokens.encode());
            let found = access_token_from_cookies(&headers(&[(header::COOKIE, &header)]));
            assert_eq!(found.as_deref(), Some(tokens.access.as_str()));
        }
    }

    #[test]
    fn cookies_are_secure_and_host_prefixed_behind_an_https_public_url() {
        let site = Site::new(Some("https://verdict.example.com/"));
        let cookie = site.set_session(&tokens());
        assert!(cookie.starts_with("__Host-verdict_session="), "{cookie}");
        for attribute in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }
        let plain = Site::new(None).set_session(&tokens());
        assert!(plain.starts_with("verdict_session=") && !plain.contains("Secure"));
    }

    #[test]
    fn only_the_sites_own_origin_may_change_state() {
        let site = Site::new(Some("https://verdict.example.com"));
        let from = |origin: &str| headers(&[(header::ORIGIN, origin)]);
        assert!(site.same_origin(&from("https://verdict.example.com")));
        assert!(!site.same_origin(&from("https://evil.example")));
        assert!(!site.same_origin(&from("http://verdict.example.com")));
        assert!(!site.same_origin(&from("null")));
        assert!(!site.same_origin(&HeaderMap::new()));
        let referred = headers(&[(header::REFERER, "https://verdict.example.com/runs/1")]);
        assert!(site.same_origin(&referred));
    }

    #[test]
    fn without_a_public_url_the_origin_is_the_requested_host() {
        let site = Site::new(None);
        let request = headers(&[
            (header::HOST, "127.0.0.1:3003"),
            (header::ORIGIN, "http://127.0.0.1:3003"),
        ]);
        assert!(site.same_origin(&request));
        let other_port = headers(&[
            (header::HOST, "127.0.0.1:3003"),
            (header::ORIGIN, "http://127.0.0.1:4000"),
        ]);
        assert!(!site.same_origin(&other_port));
        let behind_tls = headers(&[
            (header::HOST, "verdict.example.com"),
            (header::ORIGIN, "https://verdict.example.com"),
        ]);
        assert!(site.same_origin(&behind_tls));
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
