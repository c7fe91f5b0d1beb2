//! Request extractors that fail with problem documents: strict JSON bodies, the
//! authenticated principal, and a run's reporter.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, Method};
use serde::de::DeserializeOwned;
use verdict_contracts::auth::Principal;
use verdict_contracts::idempotency::IdempotencyKey;
use verdict_contracts::ids::{ProjectId, RunId};
use verdict_contracts::page::PageRequest;

use crate::auth::Identity;
use crate::content_encoding::body_error;
use crate::problem::{ApiError, FieldError};
use crate::ratelimit::Spend;
use crate::state::AppState;

/// An id from the path. Text that is no id names nothing, so it is answered as an id
/// that is not stored is: `not_found` (the service's own words for that).
pub fn path_id<T: std::str::FromStr>(text: &str, not_found: &'static str) -> Result<T, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound(not_found))
}

/// The run a path names; text that is no run id names no run.
pub fn run_path(text: &str) -> Result<RunId, ApiError> {
    path_id(text, "run not found")
}

/// A JSON body, parsed strictly: unknown fields are refused here, at the edge, while
/// the shared message types ignore them so that services of different versions still
/// understand each other. Errors name the offending field, or the line and column of a
/// syntax error.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType("application/json"));
        }
        let bytes = axum::body::to_bytes(request.into_body(), usize::MAX)
            .await
            .map_err(|err| body_error(&err))?;
        parse(&bytes).map(ApiJson)
    }
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut unknown = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let mut note_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let watched = serde_ignored::Deserializer::new(&mut deserializer, &mut note_unknown);
    let parsed = serde_path_to_error::deserialize(watched).map_err(|err| {
        let inner = err.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest(format!(
                "malformed JSON at line {} column {}",
                inner.line(),
                inner.column()
            ));
        }
        let path = err.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        let message = inner.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(text, _)| text)
            .to_owned();
        ApiError::Validation(vec![FieldError { field, message }])
    })?;
    if unknown.is_empty() {
        return Ok(parsed);
    }
    Err(ApiError::Validation(
        unknown
            .into_iter()
            .map(|path| {
                let name = path.rsplit('.').next().unwrap_or(&path).to_owned();
                FieldError {
                    field: path,
                    message: format!("unknown field `{name}`"),
                }
            })
            .collect(),
    ))
}

/// The `Idempotency-Key` of a creating request, if it carries one (400 when it is not 1
/// to 255 visible ASCII characters).
pub struct IdempotencyKeyHeader(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKeyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        value
            .to_str()
            .ok()
            .and_then(|key| IdempotencyKey::try_from(key.to_owned()).ok())
            .map(|key| Self(Some(key)))
            .ok_or_else(|| {
                ApiError::invalid(
                    "Idempotency-Key",
                    "must be 1 to 255 visible ASCII characters",
                )
            })
    }
}

/// The caller, authenticated and within its principal's rate budget.
pub struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        identify(parts, state)
            .await
            .map(|identity| Authenticated(identity.principal))
    }
}

/// An administrator of the installation (403 for anyone else), authenticated and
/// within its rate budget. Decided from the access token alone, so operations for
/// administrators work while the auth service is down.
pub struct Administrator;

impl FromRequestParts<AppState> for Administrator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let identity = identify(parts, state).await?;
        if !identity.is_admin {
            return Err(ApiError::Forbidden("only administrators may do this"));
        }
        Ok(Administrator)
    }
}

/// Authenticates the request and spends from its principal's rate budget.
async fn identify(parts: &Parts, state: &AppState) -> Result<Identity, ApiError> {
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let identity = state.auth.identify(authorization).await?;
    let key = match &identity.principal {
        Principal::User { user_id, .. } => user_id.to_string(),
        Principal::ApiToken { token_id, .. } => token_id.to_string(),
    };
    let spend = if parts.method == Method::GET || parts.method == Method::HEAD {
        Spend::Read
    } else {
        Spend::Write
    };
    state
        .limiter
        .check_principal(&key, spend)
        .map_err(ApiError::RateLimited)?;
    Ok(identity)
}

/// A caller allowed to report to the run its path names (the reporter role in the run's
/// project), with that project. Checked from the request head alone, so a caller who may
/// not write never gets to make the gateway read (or buffer) a body.
pub struct RunReporter {
    pub principal: Principal,
    pub run_id: RunId,
    pub project_id: ProjectId,
}

impl FromRequestParts<AppState> for RunReporter {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        let Path(run_id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
        let run_id = run_path(&run_id)?;
        let project_id = state.ingest.authorize(&principal, run_id).await?;
        Ok(Self {
            principal,
            run_id,
            project_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    fn query(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams(
            pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        )
    }

    fn field_of(error: ApiError) -> String {
        match error {
            ApiError::Validation(fields) => fields[0].field.clone(),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn query_params_give_the_page_and_the_attributes_they_hold() {
        let mut params = query(&[("attr.os", "linux"), ("limit", "20"), ("cursor", "c")]);
        assert_eq!(params.page().unwrap().limit, 20);
        assert_eq!(
            params.attributes(),
            BTreeMap::from([("os".to_owned(), "linux".to_owned())])
        );
        params.finish().unwrap();
    }

    #[test]
    fn a_query_param_that_does_not_parse_is_refused_naming_it() {
        assert_eq!(
            field_of(query(&[("limit", "many")]).page().unwrap_err()),
            "limit"
        );
    }

    #[test]
    fn a_query_param_the_route_does_not_take_is_refused_naming_it() {
        let mut params = query(&[("cursor", "c"), ("lmit", "5")]);
        params.page().unwrap();
        assert_eq!(field_of(params.finish().unwrap_err()), "lmit");
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn field_errors(json: &str) -> Vec<FieldError> {
        match parse::<Body>(json.as_bytes()) {
            Err(ApiError::Validation(errors)) => errors,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_wrong_type_names_the_field_path() {
        let errors = field_errors(r#"{"name":"a","inner":{"count":"x"}}"#);
        assert_eq!(errors[0].field, "inner.count");
    }

    #[test]
    fn an_unknown_field_is_refused() {
        let errors = field_errors(r#"{"name":"a","inner":{"count":1},"extra":1}"#);
        assert!(
            errors[0].message.contains("unknown field `extra`"),
            "{errors:?}"
        );
    }

    #[test]
    fn an_unknown_nested_field_names_its_path() {
        let errors = field_errors(r#"{"name":"a","inner":{"count":1,"extra":1}}"#);
        assert_eq!(errors[0].field, "inner.extra", "{errors:?}");
        assert_eq!(errors[0].message, "unknown field `extra`");
    }

    #[test]
    fn shared_message_types_are_strict_at_the_edge_too() {
        let body = br#"{"results": [{"name": "x", "status": "passed", "colour": "red"}]}"#;
        match parse::<verdict_contracts::runs::ResultBatchInput>(body) {
            Err(ApiError::Validation(errors)) => {
                assert_eq!(errors[0].field, "results.0.colour", "{errors:?}")
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_syntax_error_names_line_and_column() {
        match parse::<Body>(b"{\n  \"name\": ") {
            Err(ApiError::BadRequest(detail)) => assert!(detail.contains("line 2"), "{detail}"),
            other => panic!("{other:?}"),
        }
    }
}

/// A route's query parameters, read one by one; what the route does not take is
/// refused by [`QueryParams::finish`], so a typo is never silently ignored.
#[derive(Debug, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
        Ok(Self(pairs))
    }
}

impl QueryParams {
    /// The value of `name`, taken out.
    pub fn take(&mut self, name: &str) -> Option<String> {
        let index = self.0.iter().position(|(key, _)| key == name)?;
        Some(self.0.remove(index).1)
    }

    /// The value of `name` parsed, or a problem naming it and what it `must` be.
    pub fn parse<T: std::str::FromStr>(
        &mut self,
        name: &str,
        must: &str,
    ) -> Result<Option<T>, ApiError> {
        self.take(name)
            .map(|value| value.parse().map_err(|_| ApiError::invalid(name, must)))
            .transpose()
    }

    /// `cursor` and `limit`.
    pub fn page(&mut self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest {
            cursor: self.take("cursor"),
            limit: self
                .parse("limit", "must be a whole number from 1 to 500")?
                .unwrap_or(PageRequest::default().limit),
        })
    }

    /// Every `attr.<key>=<value>`, taken out.
    pub fn attributes(&mut self) -> BTreeMap<String, String> {
        let mut attributes = BTreeMap::new();
        self.0
            .retain(|(name, value)| match name.strip_prefix("attr.") {
                Some(key) if !key.is_empty() => {
                    attributes.insert(key.to_owned(), value.clone());
                    false
                }
                _ => true,
            });
        attributes
    }

    /// Refuses what is left: parameters the route does not know.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.0.first() {
            None => Ok(()),
            Some((name, _)) => Err(ApiError::invalid(name, "unknown query parameter")),
        }
    }
}
