//! `/projects/{slug}/flaky`: tests whose outcome flips, flakiest first.

use axum::extract::{Path, State};
use maud::html;
use verdict_contracts::page::PageRequest;
use verdict_contracts::runs::triage::{RunSelection, Window};
use verdict_contracts::runs::{self, FlakyTests};

use super::layout::Page;
use super::{encode_component, SignedIn};
use crate::error::WebError;
use crate::{format, Web};

/// Finished runs looked at, as the API's default.
const WINDOW: u32 = 50;

pub async fn show(
    State(web): State<Web>,
    signed_in: SignedIn,
    Path(slug): Path<String>,
) -> Result<Page, WebError> {
    let access = signed_in.project(&web, &slug).await?;
    let request = FlakyTests {
        project: access.project_id.to_string(),
        selection: RunSelection {
            window: Window::Runs(WINDOW),
            ..RunSelection::default()
        },
        page: PageRequest::default(),
    };
    let flaky = signed_in
        .request(&web, &runs::FLAKY_TESTS, &request)
        .await?;
    let body = html! {
        h1 { "Flaky tests" }
        p.muted { "Tests whose outcome flipped across the latest " (WINDOW) " finished runs." }
        div.scroll {
            table {
                thead { tr { th { "Test" } th { "Suite" } th { "Flips" } th { "Runs" } th { "Flake rate" } th { "Last seen" } } }
                tbody {
                    @if flaky.items.is_empty() { tr.empty { td colspan="6" { "No flaky tests." } } }
                    @for test in &flaky.items {
                        tr {
                            td { a href={ "/projects/" (access.slug) "/tests/" (encode_component(&test.test_key)) } { (test.name) } }
                            td { (test.suite.as_deref().unwrap_or("")) }
                            td { (test.flips) }
                            td { (test.runs) }
                            td { (format!("{:.0} %", test.flake_rate * 100.0)) }
                            td { (format::time(&test.last_seen)) }
                        }
                    }
                }
            }
        }
    };
    Ok(Page::new(
        "Flaky tests",
        signed_in.nav(Some(&access.slug)),
        body,
    ))
}
