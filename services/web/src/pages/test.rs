//! `/projects/{slug}/tests/{test_key}`: one test across runs: a pass/fail strip, a
//! duration chart, how often it flips, and its recent failures.

use axum::extract::{Path, State};
use maud::html;
use verdict_contracts::page::PageRequest;
use verdict_contracts::runs::{self, TestHistory};

use super::layout::Page;
use super::SignedIn;
use crate::error::WebError;
use crate::{charts, format, Web};

/// Runs of history drawn.
const HISTORY_RUNS: u32 = 100;
/// Recent failures listed.
const RECENT_FAILURES: usize = 10;

pub async fn show(
    State(web): State<Web>,
    signed_in: SignedIn,
    Path((slug, test_key)): Path<(String, String)>,
) -> Result<Page, WebError> {
    let access = signed_in.project(&web, &slug).await?;
    let request = TestHistory {
        project: access.project_id.to_string(),
        test_key: test_key.clone(),
        page: PageRequest {
            cursor: None,
            limit: HISTORY_RUNS,
        },
    };
    let history = signed_in
        .request(&web, &runs::TEST_HISTORY, &request)
        .await?;
    let entries = &history.items;
    if entries.is_empty() {
        return Err(WebError::NotFound);
    }
    let failures: Vec<_> = entries
        .iter()
        .filter(|entry| entry.status.is_failure())
        .take(RECENT_FAILURES)
        .collect();
    let body = html! {
        h1 { "Test history" }
        p.muted { code { (test_key) } }
        section aria-labelledby="outcomes" {
            h2 #outcomes { "Outcomes" }
            (charts::strip(entries))
            p {
                (entries.len()) " runs · "
                (entries.iter().filter(|e| e.status.is_failure()).count()) " failed · flake rate "
                @match charts::flip_rate(entries) {
                    Some(rate) => strong data-flake-rate { (format!("{:.0} %", rate * 100.0)) },
                    None => "—",
                }
            }
        }
        section aria-labelledby="durations" {
            h2 #durations { "Duration" }
            (charts::durations(entries))
        }
        section aria-labelledby="recent" {
            h2 #recent { "Recent failures" }
            p.muted { "Each run's page shows the failure's trace and output." }
            @if failures.is_empty() { p.muted { "No failures in these runs." } }
            ul.recent-failures {
                @for entry in failures {
                    li {
                        (format::status(entry.status.as_str())) " "
                        a href={ "/runs/" (entry.run_id) } { (entry.run_name) } " · "
                        (format::time(&entry.started_at))
                        @if let Some(message) = &entry.message { pre.message { (message) } }
                    }
                }
            }
        }
        section aria-labelledby="runs" {
            h2 #runs { "Runs" }
            div.scroll {
                table {
                    thead { tr { th { "Run" } th { "Status" } th { "Duration" } th { "Started" } } }
                    tbody {
                        @for entry in entries {
                            tr {
                                td { a href={ "/runs/" (entry.run_id) } { (entry.run_name) } }
                                td { (format::status(entry.status.as_str())) }
                                td { (format::optional_duration(entry.duration_ms)) }
                                td { (format::time(&entry.started_at)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(Page::new(
        "Test history",
        signed_in.nav(Some(&access.slug)),
        body,
    ))
}
