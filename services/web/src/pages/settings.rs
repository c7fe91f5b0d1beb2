//! `/projects/{slug}/settings` (maintainers and owners): members and their roles, API
//! tokens (created with a one-time display of the secret, revoked).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use verdict_contracts::auth::{
    self, AddMember, CreateToken, CreatedToken, DeleteMember, DisplayName, Email, ListMembers,
    ListTokens, NewMember, ProjectAccess, RevokeToken, Role,
};
use verdict_contracts::idempotency::Keyed;
use verdict_contracts::page::PageRequest;
use verdict_contracts::system::Empty;

use super::layout::Page;
use super::{path_id, see_other, SignedIn};
use crate::error::WebError;
use crate::{format, Web};

const LISTED: u32 = 500;

/// The project, when the caller may manage it: viewers and reporters get 403.
async fn managed(web: &Web, signed_in: &SignedIn, slug: &str) -> Result<ProjectAccess, WebError> {
    let access = signed_in.project(web, slug).await?;
    if access.role < Role::Maintainer {
        return Err(WebError::Forbidden(
            "only maintainers and owners manage a project".into(),
        ));
    }
    Ok(access)
}

pub async fn show(
    State(web): State<Web>,
    signed_in: SignedIn,
    Path(slug): Path<String>,
) -> Result<Page, WebError> {
    let access = managed(&web, &signed_in, &slug).await?;
    render(&web, &signed_in, &access, None).await
}

async fn render(
    web: &Web,
    signed_in: &SignedIn,
    access: &ProjectAccess,
    created: Option<CreatedToken>,
) -> Result<Page, WebError> {
    let page = PageRequest {
        cursor: None,
        limit: LISTED,
    };
    let members = ListMembers {
        project: access.project_id.to_string(),
        page: page.clone(),
    };
    let tokens = ListTokens {
        project: access.project_id.to_string(),
        page,
    };
    let (members, tokens) = futures::try_join!(
        signed_in.request(web, &auth::LIST_MEMBERS, &members),
        signed_in.request(web, &auth::LIST_TOKENS, &tokens),
    )?;
    let base = format!("/projects/{}/settings", access.slug);
    let csrf = signed_in.csrf();
    let body = html! {
        h1 { "Settings of " (access.slug) }
        @if let Some(created) = &created {
            section.secret role="alert" aria-labelledby="new-token" {
                h2 #new-token { "New token " (created.name) }
                p { "Copy it now: it is shown only this once." }
                input #token-secret readonly value=(created.token) aria-label="Token secret";
            }
        }
        section aria-labelledby="members" {
            h2 #members { "Members" }
            div.scroll {
                table {
                    thead { tr { th { "Name" } th { "E-mail" } th { "Role" } th { span.sr-only { "Actions" } } } }
                    tbody {
                        @for member in &members.items {
                            tr {
                                td { (member.name) }
                                td { (member.email) }
                                td {
                                    form.inline method="post" action={ (base) "/members" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="email" value=(member.email);
                                        (role_select(member.role, &format!("Role of {}", member.email)))
                                        button type="submit" { "Change" }
                                    }
                                }
                                td {
                                    form.inline method="post" action={ (base) "/members/" (member.user_id) "/remove" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button.danger type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.row method="post" action={ (base) "/members" } aria-label="Add a member" {
                input type="hidden" name="csrf" value=(csrf);
                label { "E-mail " input type="email" name="email" required; }
                label { "Role " (role_select(Role::Viewer, "Role")) }
                button type="submit" { "Add member" }
            }
        }
        section aria-labelledby="tokens" {
            h2 #tokens { "API tokens" }
            div.scroll {
                table {
                    thead { tr { th { "Name" } th { "Role" } th { "Created" } th { "Expires" } th { "Last used" } th { span.sr-only { "Actions" } } } }
                    tbody {
                        @if tokens.items.is_empty() { tr.empty { td colspan="6" { "No tokens." } } }
                        @for token in &tokens.items {
                            tr data-token=(token.id) {
                                td { (token.name) }
                                td { (token.role.as_str()) }
                                td { (format::time(&token.created_at)) }
                                td { @if let Some(at) = &token.expires_at { (format::time(at)) } @else { "never" } }
                                td { @if let Some(at) = &token.last_used_at { (format::time(at)) } @else { "never" } }
                                td {
                                    form.inline method="post" action={ (base) "/tokens/" (token.id) "/revoke" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button.danger type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.row method="post" action={ (base) "/tokens" } aria-label="Create a token" {
                input type="hidden" name="csrf" value=(csrf);
                label { "Name " input #token-name name="name" required maxlength="200"; }
                label { "Role " (role_select(Role::Reporter, "Role")) }
                label { "Expires " input type="date" name="expires"; }
                button type="submit" { "Create token" }
            }
        }
    };
    Ok(Page::new(
        "Settings",
        signed_in.nav(Some(&access.slug)),
        body,
    ))
}

fn role_select(selected: Role, label: &str) -> Markup {
    html! {
        select name="role" aria-label=(label) {
            @for role in Role::ALL {
                option value=(role.as_str()) selected[role == selected] { (role.as_str()) }
            }
        }
    }
}

fn role(text: &str) -> Result<Role, WebError> {
    text.parse().map_err(WebError::BadRequest)
}

#[derive(Deserialize)]
pub struct NewToken {
    csrf: String,
    name: String,
    role: String,
    expires: Option<String>,
}

/// Creates a token and shows its secret in this answer only: never in a URL, never
/// stored by the browser (`no-store`).
pub async fn create_token(
    State(web): State<Web>,
    signed_in: SignedIn,
    Path(slug): Path<String>,
    Form(form): Form<NewToken>,
) -> Result<Page, WebError> {
    signed_in.0.check_csrf(&form.csrf)?;
    let access = managed(&web, &signed_in, &slug).await?;
    let name = DisplayName::try_from(form.name)
        .map_err(|err| WebError::BadRequest(format!("name {err}")))?;
    let expires_at = form
        .expires
        .filter(|date| !date.trim().is_empty())
        .map(|date| format!("{}T23:59:59Z", date.trim()));
    let request = CreateToken {
        project: access.project_id.to_string(),
        name,
        role: role(&form.role)?,
        expires_at,
    };
    let created = signed_in
        .request(&web, &auth::CREATE_TOKEN, &Keyed::plain(request))
        .await?;
    render(&web, &signed_in, &access, Some(created)).await
}

#[derive(Deserialize)]
pub struct Csrf {
    csrf: String,
}

pub async fn revoke_token(
    State(web): State<Web>,
    signed_in: SignedIn,
    Path((slug, token_id)): Path<(String, String)>,
    Form(form): Form<Csrf>,
) -> Result<Response, WebError> {
    signed_in.0.check_csrf(&form.csrf)?;
    let access = managed(&web, &signed_in, &slug).await?;
    let request = RevokeToken {
        project: access.project_id.to_string(),
        token_id: path_id(&token_id)?,
    };
    let Empty {} = signed_in
        .request(&web, &auth::REVOKE_TOKEN, &request)
        .await?;
    Ok(see_other(&format!("/projects/{}/settings", access.slug)))
}

#[derive(Deserialize)]
pub struct MemberForm {
    csrf: String,
    email: String,
    role: String,
}

pub async fn put_member(
    State(web): State<Web>,
    signed_in: SignedIn,
    Path(slug): Path<String>,
    Form(form): Form<MemberForm>,
) -> Result<Response, WebError> {
    signed_in.0.check_csrf(&form.csrf)?;
    let access = managed(&web, &signed_in, &slug).await?;
    let email =
        Email::try_from(form.email).map_err(|err| WebError::BadRequest(format!("e-mail {err}")))?;
    let request = AddMember {
        project: access.project_id.to_string(),
        member: NewMember {
            email,
            role: role(&form.role)?,
        },
    };
    match signed_in.request(&web, &auth::ADD_MEMBER, &request).await {
        Ok(_) => Ok(see_other(&format!("/projects/{}/settings", access.slug))),
        Err(WebError::NotFound) => Err(WebError::BadRequest(
            "no user has this e-mail address; an administrator creates users".into(),
        )),
        Err(other) => Err(other),
    }
}

pub async fn remove_member(
    State(web): State<Web>,
    signed_in: SignedIn,
    Path((slug, user_id)): Path<(String, String)>,
    Form(form): Form<Csrf>,
) -> Result<Response, WebError> {
    signed_in.0.check_csrf(&form.csrf)?;
    let access = managed(&web, &signed_in, &slug).await?;
    let request = DeleteMember {
        project: access.project_id.to_string(),
        user_id: path_id(&user_id)?,
    };
    let Empty {} = signed_in
        .request(&web, &auth::DELETE_MEMBER, &request)
        .await?;
    Ok(see_other(&format!("/projects/{}/settings", access.slug)).into_response())
}
