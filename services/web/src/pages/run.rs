//! `/runs/{id}`: a run with its counts (live), failures first, all results with filters
//! and keyset paging, and its artifacts with inline previews.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use futures::future::join_all;
use maud::{html, Markup};
use verdict_contracts::artifacts::{self, Artifact, ArtifactRef, ArtifactState, ListArtifacts};
use verdict_contracts::ids::{ArtifactId, RunId};
use verdict_contracts::page::PageRequest;
use verdict_contracts::runs::{self, ListResults, ResultStatus, Run, RunRef, TestResult};

use super::layout::Page;
use super::{encode_component, path_id, query, see_other, SignedIn};
use crate::error::WebError;
use crate::format;
use crate::Web;

const RESULTS_PER_PAGE: u32 = 100;
/// Newest results shown above the failures; live arrivals are added on top and the
/// table keeps this many.
const LATEST_SHOWN: u32 = 20;
/// Failures shown at the top, per kind (failed, errored); the rest are in the list.
const FAILURES_SHOWN: u32 = 50;
const ARTIFACTS_SHOWN: u32 = 200;
/// Images and videos previewed inline; each costs a signed URL.
const PREVIEWS: usize = 24;
/// Text artifacts previewed inline, and how much of each: their head is read from the
/// blob store while the page is made.
const TEXT_PREVIEWS: usize = 4;
const TEXT_PREVIEW_BYTES: usize = 16 * 1024;

#[derive(Debug, Default, serde::Deserialize)]
pub struct Filters {
    status: Option<String>,
    suite: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

pub async fn show(
    State(web): State<Web>,
    signed_in: SignedIn,
    Path(run_id): Path<String>,
    Query(filters): Query<Filters>,
) -> Result<Page, WebError> {
    let run_id: RunId = path_id(&run_id)?;
    let run: Run = signed_in
        .request(&web, &runs::GET_RUN, &RunRef { run_id })
        .await?;
    let status = given(&filters.status)
        .map(str::parse::<ResultStatus>)
        .transpose()
        .map_err(|err| WebError::BadRequest(err.to_string()))?;
    let list = |status: Option<ResultStatus>, limit: u32, cursor: Option<&str>| ListResults {
        run_id: run.id,
        status,
        q: given(&filters.q).map(str::to_owned),
        suite: given(&filters.suite).map(str::to_owned),
        newest_first: false,
        page: PageRequest {
            cursor: cursor.map(str::to_owned),
            limit,
        },
    };
    let failures_of = |status| ListResults {
        q: None,
        suite: None,
        ..list(Some(status), FAILURES_SHOWN, None)
    };
    let (failed, errored) = (
        failures_of(ResultStatus::Failed),
        failures_of(ResultStatus::Errored),
    );
    let all = list(status, RESULTS_PER_PAGE, given(&filters.cursor));
    let newest = ListResults {
        q: None,
        suite: None,
        newest_first: true,
        ..list(None, LATEST_SHOWN, None)
    };
    let listed = ListArtifacts {
        run_id: run.id,
        page: PageRequest {
            cursor: None,
            limit: ARTIFACTS_SHOWN,
        },
        prefix: None,
    };
    let project = run.project_id.to_string();
    let (access, latest, failed, errored, results, artifacts) = futures::try_join!(
        signed_in.project(&web, &project),
        signed_in.request(&web, &runs::LIST_RESULTS, &newest),
        signed_in.request(&web, &runs::LIST_RESULTS, &failed),
        signed_in.request(&web, &runs::LIST_RESULTS, &errored),
        signed_in.request(&web, &runs::LIST_RESULTS, &all),
        signed_in.request(&web, &artifacts::LIST, &listed),
    )?;
    let (previews, texts) = futures::join!(
        previews(&web, &signed_in, &artifacts.items),
        texts(&web, &signed_in, &artifacts.items)
    );
    let origins = media_origins(&previews);
    let failures: Vec<&TestResult> = failed.items.iter().chain(&errored.items).collect();
    let view = View {
        slug: &access.slug,
        artifacts: &artifacts.items,
        previews: &previews,
        texts: &texts,
    };
    let next = results.next_cursor.as_deref().map(|cursor| {
        query(&[
            ("status", given(&filters.status)),
            ("suite", given(&filters.suite)),
            ("q", given(&filters.q)),
            ("cursor", Some(cursor)),
        ])
    });
    let body = html! {
        (summary(&run))
        p.live-state data-live-state role="status" aria-live="polite" { "" }
        section aria-labelledby="latest" {
            h2 #latest { "Latest results" }
            div.scroll.latest {
                table.results {
                    thead { tr { th { "Status" } th { "Test" } th { "Suite" } th { "Attempt" } th { "Duration" } } }
                    tbody data-live-results data-slug=(access.slug) data-keep=(LATEST_SHOWN) {
                        @for result in &latest.items { (view.result_row(result)) }
                    }
                }
            }
        }
        section aria-labelledby="failures" {
            h2 #failures { "Failures" }
            @if failures.is_empty() { p.muted data-no-failures { "No failures." } }
            ul.failures {
                @for failure in &failures { li { (view.failure(failure)) } }
            }
        }
        section aria-labelledby="all" {
            h2 #all { "All results" }
            (result_filters(&filters))
            div.scroll {
                table.results {
                    thead { tr { th { "Status" } th { "Test" } th { "Suite" } th { "Attempt" } th { "Duration" } } }
                    tbody {
                        @if results.items.is_empty() { tr.empty { td colspan="5" { "No results." } } }
                        @for result in &results.items { (view.result_row(result)) }
                    }
                }
            }
            nav.pager aria-label="Result pages" {
                @if given(&filters.cursor).is_some() {
                    a href={ "/runs/" (run.id) (query(&[("status", given(&filters.status)), ("suite", given(&filters.suite)), ("q", given(&filters.q))])) } { "First results" }
                }
                @if let Some(next) = next { a rel="next" href={ "/runs/" (run.id) (next) } { "More results" } }
            }
        }
        section aria-labelledby="artifacts" {
            h2 #artifacts { "Artifacts" }
            (view.artifact_list(artifacts.items.iter().collect(), true))
        }
    };
    Ok(
        Page::new(run.name.clone(), signed_in.nav(Some(&access.slug)), body)
            .media_from(origins)
            .live(format!("run:{}", run.id)),
    )
}

fn summary(run: &Run) -> Markup {
    html! {
        header.run {
            h1 { (run.name) }
            p {
                span data-run-status { (format::status(run.status.as_str())) }
                " started " (format::time(&run.started_at))
                @if let Some(ms) = run.duration_ms { " · took " (format::duration(ms)) }
            }
            (format::progress(&run.counts))
            p { (format::counts(&run.counts)) }
            @if !run.attributes.is_empty() {
                p.attributes { @for (key, value) in &run.attributes { span.attr { (key) "=" (value) } " " } }
            }
        }
    }
}

fn result_filters(filters: &Filters) -> Markup {
    html! {
        form.filters method="get" role="search" aria-label="Filter results" {
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for word in ["passed", "failed", "errored", "skipped"] {
                        option value=(word) selected[given(&filters.status) == Some(word)] { (word) }
                    }
                }
            }
            label { "Suite " input name="suite" value=[given(&filters.suite)]; }
            label { "Search " input type="search" name="q" placeholder="words in name or message" value=[given(&filters.q)]; }
            button type="submit" { "Filter" }
        }
    }
}

/// What an artifact's inline preview shows, by artifact id: a signed URL of an image
/// or video, or the head of a text.
type Previews = Vec<(ArtifactId, String)>;

async fn previews(web: &Web, signed_in: &SignedIn, artifacts: &[Artifact]) -> Previews {
    let wanted = artifacts
        .iter()
        .filter(|a| a.state == ArtifactState::Stored && preview_kind(&a.content_type).is_some())
        .take(PREVIEWS);
    join_all(wanted.map(|artifact| async move {
        let reference = ArtifactRef {
            artifact_id: artifact.id,
        };
        signed_in
            .request(web, &artifacts::DOWNLOAD, &reference)
            .await
            .ok()
            .map(|target| (artifact.id, target.url))
    }))
    .await
    .into_iter()
    .flatten()
    .collect()
}

/// The head of the first few stored text artifacts, by artifact id.
async fn texts(web: &Web, signed_in: &SignedIn, artifacts: &[Artifact]) -> Previews {
    let wanted = artifacts
        .iter()
        .filter(|a| a.state == ArtifactState::Stored && is_text(&a.content_type))
        .take(TEXT_PREVIEWS);
    join_all(wanted.map(|artifact| async move {
        let reference = ArtifactRef {
            artifact_id: artifact.id,
        };
        let target = signed_in
            .request(web, &artifacts::DOWNLOAD, &reference)
            .await
            .ok()?;
        let head = text_head(web, &target.url).await?;
        Some((artifact.id, head))
    }))
    .await
    .into_iter()
    .flatten()
    .collect()
}

/// The first [`TEXT_PREVIEW_BYTES`] of a blob, as text. A relative URL is the local-disk
/// store's, served by the artifacts service at the address it announces on the bus.
async fn text_head(web: &Web, url: &str) -> Option<String> {
    let url = if url.starts_with('/') {
        let endpoint = web
            .bus
            .request(
                &artifacts::BLOB_ENDPOINT,
                &verdict_contracts::system::Empty {},
            )
            .await
            .ok()?;
        format!("{}{url}", endpoint.base_url?.trim_end_matches('/'))
    } else {
        url.to_owned()
    };
    let mut response = web
        .blobs
        .get(url)
        .header("range", format!("bytes=0-{}", TEXT_PREVIEW_BYTES - 1))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let mut head = Vec::with_capacity(TEXT_PREVIEW_BYTES);
    while head.len() < TEXT_PREVIEW_BYTES {
        match response.chunk().await.ok()? {
            Some(chunk) => head.extend_from_slice(&chunk),
            None => break,
        }
    }
    head.truncate(TEXT_PREVIEW_BYTES);
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn is_text(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.starts_with("text/") || mime == "application/json" || mime == "application/x-ndjson"
}

/// Origins of absolute preview URLs (an S3 store's), for the page's CSP; relative ones
/// (the local-disk store, proxied by the gateway) are this origin.
fn media_origins(previews: &Previews) -> Vec<String> {
    let mut origins: Vec<String> = previews
        .iter()
        .filter_map(|(_, url)| {
            let (scheme, rest) = url.split_once("://")?;
            let authority = rest.split('/').next()?;
            let safe = authority
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
            (matches!(scheme, "http" | "https") && safe).then(|| format!("{scheme}://{authority}"))
        })
        .collect();
    origins.sort();
    origins.dedup();
    origins
}

#[derive(Clone, Copy)]
enum PreviewKind {
    Image,
    Video,
}

fn preview_kind(content_type: &str) -> Option<PreviewKind> {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    match mime {
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" => Some(PreviewKind::Image),
        "video/mp4" | "video/webm" => Some(PreviewKind::Video),
        _ => None,
    }
}

/// What rendering results needs besides the results.
struct View<'a> {
    slug: &'a str,
    artifacts: &'a [Artifact],
    previews: &'a Previews,
    /// Heads of text artifacts, shown as text (never as markup).
    texts: &'a Previews,
}

impl View<'_> {
    fn test_link(&self, result: &TestResult) -> Markup {
        html! {
            a href={ "/projects/" (self.slug) "/tests/" (encode_component(&result.test_key)) } { (result.name) }
        }
    }

    fn result_row(&self, result: &TestResult) -> Markup {
        html! {
            tr data-result=(result.id) {
                td { (format::status(result.status.as_str())) }
                td { (self.test_link(result)) }
                td { (result.suite.as_deref().unwrap_or("")) }
                td { (attempt(result)) }
                td { (format::optional_duration(result.duration_ms)) }
            }
        }
    }

    fn failure(&self, result: &TestResult) -> Markup {
        let own: Vec<&Artifact> = self
            .artifacts
            .iter()
            .filter(|a| a.result_id.as_deref() == Some(result.id.as_str()))
            .collect();
        let headline = result
            .message
            .as_deref()
            .and_then(|m| m.lines().next())
            .unwrap_or("");
        html! {
            details.failure data-result=(result.id) {
                summary {
                    (format::status(result.status.as_str())) " "
                    strong { (result.name) }
                    @if let Some(suite) = &result.suite { span.muted { " in " (suite) } }
                    @if !headline.is_empty() { span.headline { " — " (headline) } }
                }
                p {
                    a href={ "/projects/" (self.slug) "/tests/" (encode_component(&result.test_key)) } { "History of this test" }
                    " · attempt " (result.attempt) " · " (format::optional_duration(result.duration_ms))
                }
                @if let Some(message) = &result.message { h3 { "Message" } pre.message { (message) } }
                @if let Some(trace) = &result.trace { h3 { "Trace" } pre.trace { (trace) } }
                @if let Some(stdout) = &result.stdout { h3 { "Standard output" } pre { (stdout) } }
                @if let Some(stderr) = &result.stderr { h3 { "Standard error" } pre { (stderr) } }
                @if !own.is_empty() { h3 { "Artifacts" } (self.artifact_list(own, false)) }
            }
        }
    }

    fn artifact_list(&self, artifacts: Vec<&Artifact>, live: bool) -> Markup {
        html! {
            ul.artifacts data-artifacts[live] {
                @if artifacts.is_empty() && live { li.muted data-no-artifacts { "No artifacts." } }
                @for artifact in artifacts {
                    li {
                        a href={ "/artifacts/" (artifact.id) "/view" } { (artifact.name.as_str()) }
                        span.muted { " " (artifact.content_type) " · " (size(artifact.size)) }
                        @if artifact.state != ArtifactState::Stored { " " span.muted { "(" (artifact.state.as_str()) ")" } }
                        @if let Some(url) = self.preview(artifact.id) {
                            @match preview_kind(&artifact.content_type) {
                                Some(PreviewKind::Image) => figure { img.preview src=(url) alt={ "Preview of " (artifact.name.as_str()) } loading="lazy"; },
                                Some(PreviewKind::Video) => figure { video.preview src=(url) controls preload="metadata" {} },
                                None => {}
                            }
                        }
                        @if let Some(text) = self.text(artifact.id) {
                            pre.text-preview aria-label={ "Beginning of " (artifact.name.as_str()) } { (text) }
                        }
                    }
                }
            }
        }
    }

    fn preview(&self, artifact_id: ArtifactId) -> Option<&str> {
        find(self.previews, artifact_id)
    }

    fn text(&self, artifact_id: ArtifactId) -> Option<&str> {
        find(self.texts, artifact_id)
    }
}

fn find(previews: &Previews, artifact_id: ArtifactId) -> Option<&str> {
    previews
        .iter()
        .find(|(id, _)| *id == artifact_id)
        .map(|(_, value)| value.as_str())
}

fn attempt(result: &TestResult) -> Markup {
    html! {
        @if result.attempt > 1 {
            span.retry { "attempt " (result.attempt) }
            @if result.status == ResultStatus::Passed { " " span.flaky { "flaky" } }
        } @else { "1" }
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        0..=1023 => format!("{bytes} B"),
        1024..=1_048_575 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

/// `/artifacts/{id}/view`: the artifact's bytes, through a short-lived signed URL.
pub async fn artifact(
    State(web): State<Web>,
    signed_in: SignedIn,
    Path(artifact_id): Path<String>,
) -> Result<Response, WebError> {
    let target = signed_in
        .request(
            &web,
            &artifacts::DOWNLOAD,
            &ArtifactRef {
                artifact_id: path_id(&artifact_id)?,
            },
        )
        .await?;
    Ok(see_other(&target.url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_preview_urls_add_origins() {
        let previews = vec![
            (ArtifactId::generate(), "/blobs/abc?sig=1".into()),
            (
                ArtifactId::generate(),
                "http://127.0.0.1:9002/bucket/k?X-Amz=1".into(),
            ),
            (
                ArtifactId::generate(),
                "http://127.0.0.1:9002/bucket/j".into(),
            ),
            (ArtifactId::generate(), "javascript:alert(1)".into()),
        ];
        assert_eq!(media_origins(&previews), vec!["http://127.0.0.1:9002"]);
    }

    #[test]
    fn images_and_videos_are_previewed_and_other_types_are_not() {
        assert!(matches!(
            preview_kind("image/png"),
            Some(PreviewKind::Image)
        ));
        assert!(matches!(
            preview_kind("video/webm"),
            Some(PreviewKind::Video)
        ));
        assert!(preview_kind("image/svg+xml").is_none());
        assert!(preview_kind("text/html").is_none());
    }
}
