//! The dashboard: server time to render a run page among a million stored results, the
//! script and style it ships, first contentful paint in headless Chromium, and how soon
//! results posted at a steady rate are visible on several open pages of their run, and
//! how long the pages take to show every result once the posting stops.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::wd::WindowHandle;
use fantoccini::Client;
use serde_json::{json, Value};
use verdict_testkit::browser::WINDOW_SIZE;
use verdict_testkit::{Browser, BrowserKind, TestApp, WebSession};

use crate::runs::{store, Load};
use crate::stats::{ms, Summary};

pub struct Plan {
    pub runs: usize,
    pub results_per_run: usize,
    /// Timed renders per page variant.
    pub renders: usize,
    /// Page loads whose first contentful paint is read.
    pub paints: usize,
    /// Open pages of the live run.
    pub pages: usize,
    /// Results posted per second to the live run.
    pub rate: usize,
    pub batch: usize,
    pub seconds: u64,
    /// Each open page in a headless Chromium of its own rather than a window of one.
    pub browser_per_page: bool,
}

/// Records, in each page, when a row of each batch (`b<n>-<i>`) first appeared, and what
/// the run's total counter says and since when (epoch milliseconds).
const OBSERVE_PAGE: &str = "window.__seen = {};
new MutationObserver((records) => {
  const now = Date.now();
  for (const record of records) for (const node of record.addedNodes) {
    const batch = node.dataset && node.dataset.result && node.dataset.result.split('-')[0];
    if (batch && !(batch in window.__seen)) window.__seen[batch] = now;
  }
}).observe(document.querySelector('[data-live-results]'), { childList: true });
const total = document.querySelector('header.run [data-count=total]');
window.__total = { text: total.textContent, at: Date.now() };
new MutationObserver(() => { window.__total = { text: total.textContent, at: Date.now() }; })
  .observe(total, { childList: true, characterData: true, subtree: true });";

/// How long the pages may take, after the last batch was accepted, to show every result.
const CONVERGE_WITHIN: Duration = Duration::from_secs(10);

/// Each open page stands for a person looking at it: none is a background window whose
/// timers and frames the browser throttles.
const FOREGROUND: [&str; 3] = [
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
];

pub async fn run(plan: Plan) -> anyhow::Result<()> {
    let crate::fixture::Reporting {
        app,
        project,
        reporter,
        ..
    } = crate::fixture::Reporting::start().await;
    let load = Load {
        runs: plan.runs,
        results_per_run: plan.results_per_run,
        batch: 500,
        connections: 8,
    };
    let stored = store(&app, &project, &reporter, &load).await?;
    let total = plan.runs * plan.results_per_run;
    let run_id = stored.run_ids[stored.run_ids.len() / 2].clone();
    println!(
        "Stored {total} results ({} runs x {}) in {:.1} s.",
        plan.runs,
        plan.results_per_run,
        stored.queryable.as_secs_f64()
    );
    println!();

    let session = app.web_admin().await;
    render_times(&app, &session, &reporter, &run_id, plan.renders).await?;
    println!(
        "JavaScript and CSS shipped (uncompressed, every page's total): {} bytes ({:.1} KiB).",
        verdict_web::shipped_asset_bytes(),
        verdict_web::shipped_asset_bytes() as f64 / 1024.0
    );
    println!();

    let browser = Browser::start_with(BrowserKind::Chromium, &FOREGROUND).await;
    browser.sign_in(&app).await;
    paints(&browser.client, &app, &run_id, plan.paints).await?;
    browser.close().await;
    live_pages(&app, &project, &reporter, &plan).await?;
    Ok(())
}

async fn render_times(
    app: &TestApp,
    session: &WebSession,
    token: &str,
    run_id: &str,
    renders: usize,
) -> anyhow::Result<()> {
    // A cursor half way down the run's results, as paging there would reach.
    let mut cursor = String::new();
    for _ in 0..100 {
        let page: Value = app
            .get_as(
                token,
                &format!("/api/v1/runs/{run_id}/results?limit=500&cursor={cursor}"),
            )
            .await
            .json()
            .await?;
        cursor = page["next_cursor"].as_str().unwrap_or_default().to_owned();
    }
    let pages = [
        (
            "run page (counts, latest, failures, first 100 results)",
            format!("/runs/{run_id}"),
        ),
        (
            "run page, failed results only",
            format!("/runs/{run_id}?status=failed"),
        ),
        (
            "run page, text search `timeout`",
            format!("/runs/{run_id}?q=timeout"),
        ),
        (
            "run page, results 50 001 to 50 100 (cursor)",
            format!("/runs/{run_id}?cursor={cursor}"),
        ),
    ];
    println!("Server time to render, through the gateway (HTTP on loopback, session cookie), {renders} each:");
    println!();
    println!("| page | p50 | p95 | p99 | max | bytes |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, path) in pages {
        let mut size = 0;
        for _ in 0..20 {
            size = session.get(&path).await.bytes().await?.len();
        }
        let mut times = Vec::with_capacity(renders);
        for _ in 0..renders {
            let started = Instant::now();
            let response = session.get(&path).await;
            anyhow::ensure!(response.status() == 200, "{path}: {}", response.status());
            response.bytes().await?;
            times.push(started.elapsed());
        }
        let summary = Summary::of(times);
        println!(
            "| {name} | {} | {} | {} | {} | {size} |",
            ms(summary.p50),
            ms(summary.p95),
            ms(summary.p99),
            ms(summary.max)
        );
    }
    println!();
    Ok(())
}

async fn paints(client: &Client, app: &TestApp, run_id: &str, loads: usize) -> anyhow::Result<()> {
    let url = app.url(&format!("/runs/{run_id}"));
    let mut times = Vec::with_capacity(loads);
    for _ in 0..loads {
        client.goto(&url).await?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let paint = loop {
            let value = client
                .execute(
                    "const p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : null;",
                    vec![],
                )
                .await?;
            if let Some(at) = value.as_f64() {
                break at;
            }
            anyhow::ensure!(Instant::now() < deadline, "no first contentful paint");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        times.push(Duration::from_secs_f64(paint / 1000.0));
    }
    let first = times[0];
    let summary = Summary::of(times[1..].to_vec());
    println!("First contentful paint of that run page in headless Chromium (navigation start to first paint, signed in):");
    println!();
    println!("| load | n | p50 | p95 | max |");
    println!("| --- | --- | --- | --- | --- |");
    println!("| first (assets not cached) | 1 | {} | | |", ms(first));
    println!(
        "| later (assets cached as immutable) | {} | {} | {} | {} |",
        summary.count,
        ms(summary.p50),
        ms(summary.p95),
        ms(summary.max)
    );
    println!();
    Ok(())
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
}

/// The open pages of the live run: windows of one headless Chromium, or each in a
/// browser of its own.
struct OpenPages {
    browsers: Vec<Browser>,
    /// The browser (an index into `browsers`) and window of each page.
    pages: Vec<(usize, WindowHandle)>,
}

impl OpenPages {
    async fn open(app: &TestApp, url: &str, plan: &Plan) -> anyhow::Result<Self> {
        let mut browsers: Vec<Browser> = Vec::new();
        let mut pages = Vec::with_capacity(plan.pages);
        for _ in 0..plan.pages {
            match browsers.first() {
                Some(browser) if !plan.browser_per_page => {
                    let window = browser.client.new_window(false).await?;
                    browser.client.switch_to_window(window.handle).await?;
                    let (width, height) = WINDOW_SIZE;
                    browser.client.set_window_size(width, height).await?;
                }
                _ => {
                    let browser = Browser::start_with(BrowserKind::Chromium, &FOREGROUND).await;
                    browser.sign_in(app).await;
                    browsers.push(browser);
                }
            }
            let index = browsers.len() - 1;
            let client = &browsers[index].client;
            client.goto(url).await?;
            client.execute(OBSERVE_PAGE, vec![]).await?;
            pages.push((index, client.window().await?));
        }
        Ok(Self { browsers, pages })
    }

    /// What `script` returns in each page, in turn.
    async fn each(&self, script: &str) -> anyhow::Result<Vec<Value>> {
        let mut values = Vec::with_capacity(self.pages.len());
        for (index, window) in &self.pages {
            let client = &self.browsers[*index].client;
            client.switch_to_window(window.clone()).await?;
            values.push(client.execute(script, vec![]).await?);
        }
        Ok(values)
    }

    /// Waits until `script` returns true in every page, at most `within`; returns whether
    /// it did.
    async fn until_all(&self, script: &str, within: Duration) -> anyhow::Result<bool> {
        let deadline = Instant::now() + within;
        loop {
            let values = self.each(script).await?;
            if values.iter().all(|value| value.as_bool() == Some(true)) {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn close(self) {
        for browser in self.browsers {
            browser.close().await;
        }
    }
}

async fn live_pages(app: &TestApp, project: &str, token: &str, plan: &Plan) -> anyhow::Result<()> {
    let run: Value = app
        .post(
            token,
            &format!("/api/v1/projects/{project}/runs"),
            json!({ "name": "live" }),
        )
        .await
        .json()
        .await?;
    let run_id = run["id"].as_str().unwrap_or_default().to_owned();
    let url = app.url(&format!("/runs/{run_id}"));
    let pages = OpenPages::open(app, &url, plan).await?;
    let live = "return document.querySelector('[data-live-state]').textContent.includes('Live');";
    anyhow::ensure!(
        pages.until_all(live, Duration::from_secs(10)).await?,
        "a page did not go live"
    );

    let batches = plan.rate * plan.seconds as usize / plan.batch;
    let interval = Duration::from_secs_f64(plan.batch as f64 / plan.rate as f64);
    let mut accepted = Vec::with_capacity(batches);
    let started = tokio::time::Instant::now();
    for batch in 0..batches {
        tokio::time::sleep_until(started + interval * batch as u32).await;
        let results: Vec<Value> = (0..plan.batch)
            .map(|i| json!({ "id": format!("b{batch}-{i}"), "name": format!("live test {batch}.{i}"), "status": if i % 20 == 0 { "failed" } else { "passed" }, "duration_ms": i }))
            .collect();
        let response = app
            .post(
                token,
                &format!("/api/v1/runs/{run_id}/results"),
                json!({ "results": results }),
            )
            .await;
        anyhow::ensure!(
            response.status() == 202,
            "a batch got {}",
            response.status()
        );
        accepted.push(epoch_ms());
    }
    let last_accepted = accepted.last().copied().unwrap_or_else(epoch_ms);
    let expected = (batches * plan.batch).to_string();
    let all_shown = format!("return window.__total.text === '{expected}';");
    let waiting = Instant::now();
    let all_converged = pages.until_all(&all_shown, CONVERGE_WITHIN).await?;
    let waited = waiting.elapsed();

    let mut latencies = Vec::new();
    let mut missing = 0;
    let mut seen_by_batch: HashMap<usize, Vec<f64>> = HashMap::new();
    for seen in pages.each("return window.__seen;").await? {
        for (batch, at) in accepted.iter().enumerate() {
            // A batch arrives in one event; a batch whose rows newer ones replaced
            // within the same frame was never drawn.
            match seen[format!("b{batch}")].as_f64() {
                Some(visible) => {
                    latencies.push(Duration::from_secs_f64((visible - at).max(0.0) / 1000.0));
                    seen_by_batch.entry(batch).or_default().push(visible);
                }
                None => missing += 1,
            }
        }
    }
    let totals = pages.each("return window.__total;").await?;
    // When each page that shows every result began to, after the last 202.
    let converged: Vec<Duration> = totals
        .iter()
        .filter(|total| total["text"].as_str() == Some(expected.as_str()))
        .map(|total| {
            let at = total["at"].as_f64().unwrap_or(last_accepted);
            Duration::from_secs_f64((at - last_accepted).max(0.0) / 1000.0)
        })
        .collect();
    let in_step = converged.len();
    let spreads: Vec<Duration> = seen_by_batch
        .values()
        .map(|times| {
            let (low, high) = times
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
            Duration::from_secs_f64((high - low) / 1000.0)
        })
        .collect();
    let latency = Summary::of(latencies);
    let spread = Summary::of(spreads);
    let browsers = if plan.browser_per_page {
        "each in a headless Chromium of its own"
    } else {
        "windows of one headless Chromium"
    };
    println!(
        "Live: {} pages of one run, {browsers}, {} results/s posted ({} batches of {} over {} s); \
         latency from the 202 to the batch's first row in each page's DOM:",
        plan.pages, plan.rate, batches, plan.batch, plan.seconds
    );
    println!();
    println!("| measure | n | p50 | p95 | max |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| 202 -> visible on a page | {} | {} | {} | {} |",
        latency.count,
        ms(latency.p50),
        ms(latency.p95),
        ms(latency.max)
    );
    println!(
        "| spread of one batch across the pages (last page - first) | {} | {} | {} | {} |",
        spread.count,
        ms(spread.p50),
        ms(spread.p95),
        ms(spread.max)
    );
    if converged.is_empty() {
        println!("| last 202 -> page shows every result | 0 | | | |");
    } else {
        let convergence = Summary::of(converged);
        println!(
            "| last 202 -> page shows every result (pages that did) | {} | {} | {} | {} |",
            convergence.count,
            ms(convergence.p50),
            ms(convergence.p95),
            ms(convergence.max)
        );
    }
    pages.close().await;
    println!();
    println!(
        "Batches replaced by newer rows within the frame they arrived in (never drawn, counted in the counters): {missing}. \
         Pages whose counters show all {expected} results within {} s of the last 202: {in_step} of {} \
         (waited {:.1} s{}).",
        CONVERGE_WITHIN.as_secs(),
        plan.pages,
        waited.as_secs_f64(),
        if all_converged { "" } else { ", then gave up" }
    );
    Ok(())
}
