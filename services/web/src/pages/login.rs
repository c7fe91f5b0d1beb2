//! Signing in and out, and the session check the live script makes before it
//! reconnects.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;
use verdict_bus::RequestError;
use verdict_contracts::auth::{
    self, Email, LoginAttempt, LoginPassword, LoginRequest, RefreshRequest,
};
use verdict_contracts::system::Empty;
use verdict_contracts::ErrorCode;

use super::layout::{Nav, Page};
use super::{see_other, SignedIn};
use crate::error::WebError;
use crate::session::{random_token, same_secret, visitor_of, Tokens, Visitor};
use crate::Web;

/// Where to go after signing in: a path of this site only, never another origin.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && path.len() <= 2048
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/",
    }
}

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Whoever the request's cookie says, for pages open to anyone.
pub struct Anyone(Visitor);

impl FromRequestParts<Web> for Anyone {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _web: &Web) -> Result<Self, Self::Rejection> {
        Ok(Anyone(visitor_of(parts)))
    }
}

pub async fn show(
    State(web): State<Web>,
    Anyone(visitor): Anyone,
    Query(next): Query<Next>,
) -> Response {
    let next = local_path(next.next.as_deref());
    if let Visitor::SignedIn(_) = visitor {
        return see_other(next);
    }
    form_page(&web, next, None, StatusCode::OK)
}

fn form_page(web: &Web, next: &str, problem: Option<&str>, status: StatusCode) -> Response {
    let token = random_token();
    let body = html! {
        section.signin {
            h1 { "Sign in" }
            @if let Some(problem) = problem {
                p.problem role="alert" { (problem) }
            }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="next" value=(next);
                label for="email" { "E-mail" }
                input #email type="email" name="email" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
        }
    };
    let mut response = Page::new("Sign in", Nav::Minimal, body)
        .status(status)
        .into_response();
    if let Ok(cookie) = HeaderValue::from_str(&web.site.set_login(&token)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
pub struct Credentials {
    email: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

pub async fn submit(
    State(web): State<Web>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Result<Response, WebError> {
    let expected = web.site.login_token(&headers).unwrap_or_default();
    if expected.is_empty() || !same_secret(&form.csrf, &expected) {
        return Err(WebError::CrossSite);
    }
    let next = local_path(form.next.as_deref());
    let wrong = |status| {
        Ok(form_page(
            &web,
            next,
            Some("Wrong e-mail or password."),
            status,
        ))
    };
    let (Ok(email), Ok(password)) = (
        Email::try_from(form.email),
        LoginPassword::try_from(form.password),
    ) else {
        return wrong(StatusCode::UNAUTHORIZED);
    };
    let attempt = LoginAttempt {
        credentials: LoginRequest { email, password },
        client_address: Some(web.edge.client_address(peer, &headers)),
    };
    let pair = match web.bus.request(&auth::LOGIN, &attempt).await {
        Ok(pair) => pair,
        Err(RequestError::Service(error)) if error.code == ErrorCode::Unauthorized => {
            return wrong(StatusCode::UNAUTHORIZED)
        }
        Err(RequestError::Service(error)) if error.code == ErrorCode::TooManyRequests => {
            return Ok(form_page(
                &web,
                next,
                Some("Too many attempts. Wait a little and try again."),
                StatusCode::TOO_MANY_REQUESTS,
            ))
        }
        Err(other) => return Err(other.into()),
    };
    let tokens = Tokens::new(pair, random_token());
    let mut response = see_other(next);
    for cookie in [web.site.set_session(&tokens), web.site.clear_login()] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

pub async fn show_logout(Anyone(visitor): Anyone) -> Response {
    let Visitor::SignedIn(session) = visitor else {
        return see_other("/login");
    };
    let body = html! {
        section.signin {
            h1 { "Sign out" }
            form method="post" action="/logout" {
                input type="hidden" name="csrf" value=(session.tokens.csrf);
                button type="submit" { "Sign out" }
            }
        }
    };
    Page::new("Sign out", Nav::Minimal, body).into_response()
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

/// Ends the session at the auth service (its access tokens stop working on every
/// gateway) and forgets the cookie.
pub async fn logout(
    State(web): State<Web>,
    signed_in: SignedIn,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    signed_in.0.check_csrf(&form.csrf)?;
    let request = RefreshRequest {
        refresh_token: signed_in.0.tokens.refresh.clone(),
    };
    let Empty {} = web.bus.request(&auth::LOGOUT, &request).await?;
    let mut response = see_other("/login");
    if let Ok(value) = HeaderValue::from_str(&web.site.clear_session()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// 204 while the session holds (renewing its cookie when due), 401 once it is over.
pub async fn check(Anyone(visitor): Anyone) -> StatusCode {
    match visitor {
        Visitor::SignedIn(_) => StatusCode::NO_CONTENT,
        Visitor::Anonymous => StatusCode::UNAUTHORIZED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_signing_in() {
        assert_eq!(
            local_path(Some("/runs/1?status=failed")),
            "/runs/1?status=failed"
        );
        for foreign in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "runs/1",
            "/a\nb",
        ] {
            assert_eq!(local_path(Some(foreign)), "/", "{foreign:?}");
        }
        assert_eq!(local_path(None), "/");
    }
}
