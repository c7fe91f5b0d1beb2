//! `/admin/users` (administrators): every user, creating users, disabling them.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Form;
use maud::html;
use serde::Deserialize;
use verdict_contracts::auth::{
    self, CreateUser, DisplayName, Email, ListUsers, Password, UpdateUser,
};
use verdict_contracts::idempotency::Keyed;
use verdict_contracts::page::PageRequest;

use super::layout::Page;
use super::{path_id, query, see_other, SignedIn};
use crate::error::WebError;
use crate::{format, Web};

const USERS_PER_PAGE: u32 = 100;

#[derive(Deserialize)]
pub struct Cursor {
    cursor: Option<String>,
}

pub async fn show(
    State(web): State<Web>,
    signed_in: SignedIn,
    Query(cursor): Query<Cursor>,
) -> Result<Page, WebError> {
    let request = ListUsers {
        page: PageRequest {
            cursor: cursor.cursor.filter(|c| !c.is_empty()),
            limit: USERS_PER_PAGE,
        },
    };
    let users = signed_in.request(&web, &auth::LIST_USERS, &request).await?;
    let csrf = signed_in.csrf();
    let body = html! {
        h1 { "Users" }
        div.scroll {
            table {
                thead { tr { th { "Name" } th { "E-mail" } th { "Administrator" } th { "Created" } th { "Access" } } }
                tbody {
                    @for user in &users.items {
                        tr {
                            td { (user.name) }
                            td { (user.email) }
                            td { @if user.is_admin { "yes" } @else { "no" } }
                            td { (format::time(&user.created_at)) }
                            td {
                                form.inline method="post" action={ "/admin/users/" (user.id) "/access" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    @if user.disabled {
                                        input type="hidden" name="disabled" value="false";
                                        "disabled " button type="submit" { "Enable" }
                                    } @else {
                                        input type="hidden" name="disabled" value="true";
                                        button.danger type="submit" { "Disable" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = &users.next_cursor {
            nav.pager aria-label="Pages" { a rel="next" href={ "/admin/users" (query(&[("cursor", Some(next))])) } { "More users" } }
        }
        h2 { "New user" }
        form.row method="post" action="/admin/users" aria-label="Create a user" {
            input type="hidden" name="csrf" value=(csrf);
            label { "Name " input name="name" required maxlength="200"; }
            label { "E-mail " input type="email" name="email" required; }
            label { "Password " input type="password" name="password" required minlength="8" autocomplete="new-password"; }
            button type="submit" { "Create user" }
        }
    };
    Ok(Page::new("Users", signed_in.nav(None), body))
}

#[derive(Deserialize)]
pub struct NewUser {
    csrf: String,
    name: String,
    email: String,
    password: String,
}

pub async fn create_user(
    State(web): State<Web>,
    signed_in: SignedIn,
    Form(form): Form<NewUser>,
) -> Result<Response, WebError> {
    signed_in.0.check_csrf(&form.csrf)?;
    let field =
        |name: &'static str| move |err: String| WebError::BadRequest(format!("{name} {err}"));
    let request = CreateUser {
        email: Email::try_from(form.email).map_err(field("e-mail"))?,
        name: DisplayName::try_from(form.name).map_err(field("name"))?,
        password: Password::try_from(form.password).map_err(field("password"))?,
    };
    signed_in
        .request(&web, &auth::CREATE_USER, &Keyed::plain(request))
        .await?;
    Ok(see_other("/admin/users"))
}

#[derive(Deserialize)]
pub struct Access {
    csrf: String,
    disabled: bool,
}

pub async fn set_disabled(
    State(web): State<Web>,
    signed_in: SignedIn,
    Path(user_id): Path<String>,
    Form(form): Form<Access>,
) -> Result<Response, WebError> {
    signed_in.0.check_csrf(&form.csrf)?;
    let request = UpdateUser {
        user_id: path_id(&user_id)?,
        disabled: form.disabled,
    };
    signed_in
        .request(&web, &auth::UPDATE_USER, &request)
        .await?;
    Ok(see_other("/admin/users"))
}
