//! One module per page; what they share is here.

pub mod admin;
pub mod flaky;
pub mod home;
pub mod layout;
pub mod login;
pub mod project;
pub mod run;
pub mod settings;
pub mod test;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use verdict_contracts::auth::{self, Authorize, ProjectAccess};

use crate::error::WebError;
use crate::session::{visitor_of, Session, Visitor};
use crate::Web;

/// The signed-in browser; anyone else is sent to the sign-in page, which brings them
/// back here afterwards.
pub struct SignedIn(pub Session);

impl FromRequestParts<Web> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _web: &Web) -> Result<Self, Response> {
        match visitor_of(parts) {
            Visitor::SignedIn(session) => Ok(SignedIn(session)),
            Visitor::Anonymous if parts.method == Method::GET => {
                let wanted = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let location = format!("/login?next={}", encode_component(wanted));
                Err((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response())
            }
            Visitor::Anonymous => Err(WebError::SignedOut.into_response()),
        }
    }
}

impl SignedIn {
    pub async fn request<Req, Resp>(
        &self,
        web: &Web,
        operation: &verdict_contracts::Operation<Req, Resp>,
        body: &Req,
    ) -> Result<Resp, WebError>
    where
        Req: serde::Serialize,
        Resp: DeserializeOwned,
    {
        Ok(web
            .bus
            .request_as(operation, body, &self.0.principal)
            .await?)
    }

    /// The caller's access to a project named by slug or id; 404 when it has none.
    pub async fn project(&self, web: &Web, project: &str) -> Result<ProjectAccess, WebError> {
        let request = Authorize {
            principal: self.0.principal.clone(),
            project: project.to_owned(),
        };
        Ok(web.bus.request(&auth::AUTHORIZE, &request).await?)
    }

    pub fn csrf(&self) -> &str {
        &self.0.tokens.csrf
    }

    pub fn nav<'a>(&'a self, project: Option<&'a str>) -> layout::Nav<'a> {
        layout::Nav::SignedIn {
            csrf: self.csrf(),
            project,
        }
    }
}

/// The id a path names; text that is no id names nothing, like an id nothing has.
pub fn path_id<T: std::str::FromStr>(text: &str) -> Result<T, WebError> {
    text.parse().map_err(|_| WebError::NotFound)
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a query value
/// or a path segment.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A query string from pairs, leaving out empty values.
pub fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let joined: Vec<String> = pairs
        .iter()
        .filter_map(|(name, value)| {
            value
                .filter(|v| !v.is_empty())
                .map(|v| format!("{}={}", encode_component(name), encode_component(v)))
        })
        .collect();
    if joined.is_empty() {
        String::new()
    } else {
        format!("?{}", joined.join("&"))
    }
}

/// Redirect after a successful form post (303: the browser follows with a GET).
pub fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_owned())],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_keep_only_unreserved_characters() {
        assert_eq!(encode_component("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
        assert_eq!(encode_component("Suite.test-1_~"), "Suite.test-1_~");
    }

    #[test]
    fn queries_leave_out_empty_values() {
        assert_eq!(
            query(&[("status", Some("failed")), ("q", Some("")), ("suite", None)]),
            "?status=failed"
        );
        assert_eq!(query(&[("q", None)]), "");
    }
}
