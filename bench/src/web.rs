//! The dashboard: server time to render a run page among a million stored results, the
//! script and style it ships, first contentful paint in headless Chromium, and how soon
//! results posted at a steady rate are visible on several open pages of their run.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::{Client, Locator};
use serde_json::{json, Value};
use verdict_testkit::{Browser, BrowserKind, TestApp, WebSession, ADMIN_EMAIL, ADMIN_PASSWORD};

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
}

/// Records, in each page, when a row of each batch (`b<n>-<i>`) first appeared (epoch
/// milliseconds).
const OBSERVE_ROWS: &str = "window.__seen = {};
new MutationObserver((records) => {
  const now = Date.now();
  for (const record of records) for (const node of record.addedNodes) {
    const batch = node.dataset && node.dataset.result && node.dataset.result.split('-')[0];
    if (batch && !(batch in window.__seen)) window.__seen[batch] = now;
  }
}).observe(document.querySelector('[data-live-results]'), { childList: true });";

/// Each open page stands for a person looking at it: none is a background tab whose
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
    sign_in(&browser.client, &app).await?;
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

async fn sign_in(client: &Client, app: &TestApp) -> anyhow::Result<()> {
    client.goto(&app.url("/login")).await?;
    client
        .find(Locator::Css("#email"))
        .await?
        .send_keys(ADMIN_EMAIL)
        .await?;
    client
        .find(Locator::Css("#password"))
        .await?
        .send_keys(ADMIN_PASSWORD)
        .await?;
    client
        .find(Locator::Css("form button[type=submit]"))
        .await?
        .click()
        .await?;
    client.wait().for_element(Locator::Css("h1")).await?;
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
    // One browser per page, as each viewer has their own: windows of one browser share
    // its renderer and wait on each other.
    let mut browsers = Vec::with_capacity(plan.pages);
    for _ in 0..plan.pages {
        let browser = Browser::start_with(BrowserKind::Chromium, &FOREGROUND).await;
        sign_in(&browser.client, app).await?;
        browser.client.goto(&url).await?;
        browser.client.execute(OBSERVE_ROWS, vec![]).await?;
        browsers.push(browser);
    }
    for browser in &browsers {
        wait_until_live(&browser.client).await?;
    }

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
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut latencies = Vec::new();
    let mut missing = 0;
    let mut seen_by_batch: HashMap<usize, Vec<f64>> = HashMap::new();
    let mut totals = Vec::new();
    for browser in &browsers {
        let client = &browser.client;
        let seen = client.execute("return window.__seen;", vec![]).await?;
        let total = client
            .find(Locator::Css("header.run [data-count=total]"))
            .await?
            .text()
            .await?;
        totals.push(total);
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
    let spreads: Vec<Duration> = seen_by_batch
        .values()
        .map(|times| {
            let (low, high) = times
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
            Duration::from_secs_f64((high - low) / 1000.0)
        })
        .collect();
    let expected = (batches * plan.batch).to_string();
    let in_step = totals.iter().filter(|total| **total == expected).count();
    let latency = Summary::of(latencies);
    let spread = Summary::of(spreads);
    println!(
        "Live: {} pages of one run, each in its own headless Chromium, {} results/s posted ({} batches of {} over {} s); \
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
    for browser in browsers {
        browser.close().await;
    }
    println!();
    println!(
        "Batches replaced by newer rows within the frame they arrived in (never drawn, counted in the counters): {missing}. Pages whose counters show all {expected} results at the end: {in_step} of {}.",
        plan.pages
    );
    Ok(())
}

async fn wait_until_live(client: &Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = client
            .find(Locator::Css("[data-live-state]"))
            .await?
            .text()
            .await?;
        if state.contains("Live") {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "a page did not go live: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
