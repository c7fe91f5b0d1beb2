//! What a call can fail with. An answer of the API that is not a success arrives as a
//! [`Problem`] (RFC 9457), whatever the body looked like.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use verdict_contracts::FieldError;

/// An RFC 9457 problem document, as the API sends it with every error, plus the
/// `Retry-After` that came with it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Problem {
    /// A URI naming the kind of problem (`urn:verdict:problem:not-found`), stable for
    /// programs to match on.
    #[serde(rename = "type", default = "about_blank")]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub detail: String,
    /// The offending fields of a validation error.
    #[serde(default)]
    pub errors: Vec<FieldError>,
    /// Dependencies that are down (readiness only).
    #[serde(default)]
    pub unavailable: Vec<String>,
    /// How long the server asked the client to wait before trying again.
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

fn about_blank() -> String {
    "about:blank".to_owned()
}

/// The longest piece of a body that is not problem JSON kept as a problem's detail.
const MAX_FOREIGN_DETAIL_CHARS: usize = 200;

impl Problem {
    /// The problem an answer with `status` and `body` describes. A body that is not
    /// problem JSON (a proxy's HTML error page) becomes the detail, shortened.
    pub fn from_response(status: StatusCode, body: &[u8], retry_after: Option<Duration>) -> Self {
        let parsed = serde_json::from_slice::<Problem>(body)
            .ok()
            .filter(|problem| problem.status == status.as_u16());
        let problem = parsed.unwrap_or_else(|| Problem {
            kind: about_blank(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(MAX_FOREIGN_DETAIL_CHARS)
                .collect(),
            errors: Vec::new(),
            unavailable: Vec::new(),
            retry_after: None,
        });
        Problem {
            retry_after,
            ..problem
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.title)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        for (i, error) in self.errors.iter().enumerate() {
            f.write_str(if i == 0 { " (" } else { "; " })?;
            write!(f, "{error}")?;
        }
        if !self.errors.is_empty() {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Everything a call of [`crate::Client`] can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with an error.
    #[error("{method} {path}: {problem}")]
    Api {
        method: String,
        path: String,
        problem: Box<Problem>,
    },
    /// No answer: the connection failed, broke or timed out.
    #[error("{method} {url}: {reason}")]
    Transport {
        method: String,
        /// The URL without its query (a signed upload URL's query is a credential).
        url: String,
        reason: String,
    },
    /// The answer was a success but not the document this call returns.
    #[error("{method} {path}: unexpected answer: {reason}")]
    Decode {
        method: String,
        path: String,
        reason: String,
    },
    /// A local file could not be read.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The client cannot be built as configured.
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// The problem the API answered with, if that is what this is.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Api { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// The HTTP status the API answered with, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        self.problem().map(Problem::status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_document_is_decoded_with_its_field_errors() {
        let body = br#"{"type":"urn:verdict:problem:bad-request","title":"Bad Request","status":400,
            "detail":"the request body is invalid","errors":[{"field":"results[0].status","message":"unknown status"}]}"#;
        let problem = Problem::from_response(StatusCode::BAD_REQUEST, body, None);
        assert_eq!(problem.kind, "urn:verdict:problem:bad-request");
        assert_eq!(problem.errors[0].field, "results[0].status");
        assert_eq!(
            problem.to_string(),
            "400 Bad Request: the request body is invalid (results[0].status: unknown status)"
        );
    }

    #[test]
    fn a_foreign_error_page_becomes_a_problem_of_its_status() {
        let page = format!("<html>{}</html>", "x".repeat(500));
        let wait = Some(Duration::from_secs(2));
        let problem = Problem::from_response(StatusCode::BAD_GATEWAY, page.as_bytes(), wait);
        assert_eq!(problem.status, 502);
        assert_eq!(problem.title, "Bad Gateway");
        assert_eq!(problem.kind, "about:blank");
        assert_eq!(problem.detail.chars().count(), MAX_FOREIGN_DETAIL_CHARS);
        assert_eq!(problem.retry_after, wait);
    }
}
