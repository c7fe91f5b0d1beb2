//! `/`: the caller's projects with their latest runs.

use axum::extract::State;
use futures::future::join_all;
use maud::html;
use verdict_contracts::auth::{self, Me};
use verdict_contracts::page::PageRequest;
use verdict_contracts::runs::{self, ListRuns};
use verdict_contracts::system::Empty;

use super::layout::Page;
use super::project::runs_table;
use super::SignedIn;
use crate::error::WebError;
use crate::Web;

/// Latest runs shown per project.
const LATEST_RUNS: u32 = 5;
/// Projects shown with their runs; the rest are listed by name only.
const PROJECTS_WITH_RUNS: usize = 20;

pub async fn show(State(web): State<Web>, signed_in: SignedIn) -> Result<Page, WebError> {
    let me: Me = signed_in.request(&web, &auth::ME, &Empty {}).await?;
    let latest = join_all(me.projects.iter().take(PROJECTS_WITH_RUNS).map(|project| {
        let request = ListRuns {
            project: project.id.to_string(),
            status: None,
            attributes: Default::default(),
            since: None,
            until: None,
            page: PageRequest {
                cursor: None,
                limit: LATEST_RUNS,
            },
        };
        let (web, signed_in) = (&web, &signed_in);
        async move { signed_in.request(web, &runs::LIST_RUNS, &request).await }
    }))
    .await;
    let body = html! {
        h1 { "Projects" }
        p.muted { "Signed in as " (me.email) "." }
        @if me.is_admin {
            p { a href="/admin/users" { "Manage users" } }
        }
        @if me.projects.is_empty() {
            p { "You are not a member of any project yet." }
        }
        @for (index, project) in me.projects.iter().enumerate() {
            section.project {
                h2 {
                    a href={ "/projects/" (project.slug) } { (project.slug) }
                    " " span.role { (project.role.as_str()) }
                }
                @match latest.get(index) {
                    Some(Ok(page)) => (runs_table(&page.items)),
                    Some(Err(_)) => p.muted { "Runs could not be loaded." },
                    None => {}
                }
            }
        }
    };
    Ok(Page::new("Projects", signed_in.nav(None), body))
}
