//! `/projects/{slug}`: the project's runs, newest first, with filters and paging; live.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use maud::{html, Markup};
use verdict_contracts::page::PageRequest;
use verdict_contracts::runs::{self, ListRuns, Run, RunStatus};

use super::layout::Page;
use super::{query, SignedIn};
use crate::error::WebError;
use crate::format;
use crate::Web;

const RUNS_PER_PAGE: u32 = 50;

/// Filters as the form sends them; empty fields mean no filter.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Filters {
    status: Option<String>,
    /// `key=value`, one attribute filter.
    attr: Option<String>,
    /// `YYYY-MM-DD` or RFC 3339.
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A date from the form's date field as the start of that day, UTC.
fn bound(value: &Option<String>) -> Option<String> {
    non_empty(value).map(|v| {
        if v.len() == 10 {
            format!("{v}T00:00:00Z")
        } else {
            v
        }
    })
}

pub async fn show(
    State(web): State<Web>,
    signed_in: SignedIn,
    Path(slug): Path<String>,
    Query(filters): Query<Filters>,
) -> Result<Page, WebError> {
    let access = signed_in.project(&web, &slug).await?;
    let status = non_empty(&filters.status)
        .map(|s| s.parse::<RunStatus>())
        .transpose()
        .map_err(|err| WebError::BadRequest(err.to_string()))?;
    let mut attributes = BTreeMap::new();
    if let Some(attr) = non_empty(&filters.attr) {
        let (key, value) = attr.split_once('=').ok_or_else(|| {
            WebError::BadRequest("an attribute filter is written key=value".into())
        })?;
        attributes.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    let request = ListRuns {
        project: access.project_id.to_string(),
        status,
        attributes,
        since: bound(&filters.since),
        until: bound(&filters.until),
        page: PageRequest {
            cursor: non_empty(&filters.cursor),
            limit: RUNS_PER_PAGE,
        },
    };
    let page = signed_in.request(&web, &runs::LIST_RUNS, &request).await?;
    let status_value = non_empty(&filters.status);
    let attr_value = non_empty(&filters.attr);
    let since_value = non_empty(&filters.since);
    let until_value = non_empty(&filters.until);
    let next = page.next_cursor.as_deref().map(|cursor| {
        query(&[
            ("status", status_value.as_deref()),
            ("attr", attr_value.as_deref()),
            ("since", since_value.as_deref()),
            ("until", until_value.as_deref()),
            ("cursor", Some(cursor)),
        ])
    });
    let body = html! {
        h1 { (access.slug) }
        form.filters method="get" role="search" aria-label="Filter runs" {
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for word in ["running", "passed", "failed", "interrupted"] {
                        option value=(word) selected[status_value.as_deref() == Some(word)] { (word) }
                    }
                }
            }
            label { "Attribute " input name="attr" placeholder="branch=main" value=[attr_value.as_deref()]; }
            label { "From " input type="date" name="since" value=[since_value.as_deref()]; }
            label { "Until " input type="date" name="until" value=[until_value.as_deref()]; }
            button type="submit" { "Filter" }
        }
        p.live-state data-live-state role="status" aria-live="polite" { "" }
        (runs_table(&page.items))
        nav.pager aria-label="Pages" {
            @if filters.cursor.is_some() { a href={ "/projects/" (access.slug) } { "Newest runs" } }
            @if let Some(next) = next { a rel="next" href={ "/projects/" (access.slug) (next) } { "Older runs" } }
        }
    };
    Ok(
        Page::new(access.slug.clone(), signed_in.nav(Some(&access.slug)), body)
            .live(format!("project:{}", access.project_id)),
    )
}

/// Runs as a table whose rows the live script updates (`data-run`).
pub fn runs_table(runs: &[Run]) -> Markup {
    html! {
        div.scroll {
            table.runs data-runs {
                thead { tr { th { "Run" } th { "Status" } th { "Progress" } th { "Started" } th { "Duration" } th { "Attributes" } } }
                tbody {
                    @if runs.is_empty() { tr.empty { td colspan="6" { "No runs." } } }
                    @for run in runs { (run_row(run)) }
                }
            }
        }
    }
}

fn run_row(run: &Run) -> Markup {
    html! {
        tr data-run=(run.id) {
            td { a href={ "/runs/" (run.id) } { (run.name) } }
            td { (format::status(run.status.as_str())) }
            td { (format::progress(&run.counts)) (format::counts(&run.counts)) }
            td { (format::time(&run.started_at)) }
            td { (format::optional_duration(run.duration_ms)) }
            td.attributes {
                @for (key, value) in &run.attributes { span.attr { (key) "=" (value) } " " }
            }
        }
    }
}
