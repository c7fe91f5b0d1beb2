//! Projects, their members and their API tokens.

use reqwest::Method;
use serde::Serialize;
use verdict_contracts::auth::{
    CreateProject, CreatedToken, DisplayName, Member, Project, Role, TokenInfo,
};
use verdict_contracts::ids::{TokenId, UserId};
use verdict_contracts::page::{Page, PageRequest};

use crate::client::{Payload, Repeat};
use crate::{Client, Error};

/// The body of `POST /projects/{project}/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewToken {
    pub name: DisplayName,
    pub role: Role,
    /// RFC 3339; `None` never expires (required when the caller is an expiring token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Serialize)]
struct MemberRole {
    role: Role,
}

impl Client {
    /// `POST /projects`: the caller becomes its owner.
    pub async fn create_project(&self, project: &CreateProject) -> Result<Project, Error> {
        let mut call = self.call(Method::POST, self.api(&["projects"]), Repeat::keyed());
        call.payload = Payload::json(project)?;
        self.json(call).await
    }

    /// `GET /projects`: the caller's projects.
    pub async fn list_projects(&self, page: &PageRequest) -> Result<Page<Project>, Error> {
        let mut call = self.call(Method::GET, self.api(&["projects"]), Repeat::Idempotent);
        paged(&mut call.url, page);
        self.json(call).await
    }

    /// `GET /projects/{project}` by id or slug.
    pub async fn project(&self, project: &str) -> Result<Project, Error> {
        self.json(self.call(
            Method::GET,
            self.api(&["projects", project]),
            Repeat::Idempotent,
        ))
        .await
    }

    /// `PUT /projects/{project}/members/{user_id}` (maintainer or owner).
    pub async fn put_member(
        &self,
        project: &str,
        user_id: UserId,
        role: Role,
    ) -> Result<Member, Error> {
        let mut call = self.call(
            Method::PUT,
            self.api(&["projects", project, "members", &user_id.to_string()]),
            Repeat::Idempotent,
        );
        call.payload = Payload::json(&MemberRole { role })?;
        self.json(call).await
    }

    /// `DELETE /projects/{project}/members/{user_id}`.
    pub async fn delete_member(&self, project: &str, user_id: UserId) -> Result<(), Error> {
        self.empty(self.call(
            Method::DELETE,
            self.api(&["projects", project, "members", &user_id.to_string()]),
            Repeat::Idempotent,
        ))
        .await
    }

    /// `POST /projects/{project}/tokens`: the secret is in the answer only.
    pub async fn create_token(
        &self,
        project: &str,
        token: &NewToken,
    ) -> Result<CreatedToken, Error> {
        let mut call = self.call(
            Method::POST,
            self.api(&["projects", project, "tokens"]),
            Repeat::keyed(),
        );
        call.payload = Payload::json(token)?;
        self.json(call).await
    }

    /// `GET /projects/{project}/tokens`, without secrets.
    pub async fn list_tokens(
        &self,
        project: &str,
        page: &PageRequest,
    ) -> Result<Page<TokenInfo>, Error> {
        let mut call = self.call(
            Method::GET,
            self.api(&["projects", project, "tokens"]),
            Repeat::Idempotent,
        );
        paged(&mut call.url, page);
        self.json(call).await
    }

    /// `DELETE /projects/{project}/tokens/{id}`: the token stops working at once.
    pub async fn revoke_token(&self, project: &str, token_id: TokenId) -> Result<(), Error> {
        self.empty(self.call(
            Method::DELETE,
            self.api(&["projects", project, "tokens", &token_id.to_string()]),
            Repeat::Idempotent,
        ))
        .await
    }
}

/// Adds `cursor` and `limit` to a list's URL.
pub(crate) fn paged(url: &mut reqwest::Url, page: &PageRequest) {
    let mut query = url.query_pairs_mut();
    if let Some(cursor) = &page.cursor {
        query.append_pair("cursor", cursor);
    }
    query.append_pair("limit", &page.limit.to_string());
}
