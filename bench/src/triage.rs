//! Triage queries over a generated history (issue #16): failure signatures, new
//! failures, trends, the slowest tests, the catalog and the flaky list, through the
//! gateway, over runs that share a suite of tests on two branches and two environments.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::runs::{store_generated, time_get, Load, Stored};
use crate::stats::ms;

pub struct Plan {
    pub runs: usize,
    pub tests: usize,
    pub results_per_run: usize,
    pub batch: usize,
    pub connections: usize,
    pub queries: usize,
}

/// Kinds of failure message; each occurs with many different numbers.
const FAILURE_KINDS: u64 = 25;
/// Hours between two runs' starts.
const HOURS_APART: i64 = 2;

/// A small mixing function, so failures spread over tests and runs without a pattern.
fn mix(run: usize, index: usize) -> u64 {
    let mut x = (run as u64) << 32 | index as u64;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 33)
}

pub async fn run(plan: Plan) -> anyhow::Result<()> {
    let crate::fixture::Reporting {
        app,
        project,
        reporter: token,
        ..
    } = crate::fixture::Reporting::start().await;
    let now = time::OffsetDateTime::now_utc();
    let runs = plan.runs;
    let new_run = |run: usize| {
        let started = now - time::Duration::hours(HOURS_APART * (runs - run) as i64);
        json!({
            "name": format!("nightly {run}"),
            "started_at": started.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "attributes": {
                "git.branch": if run.is_multiple_of(5) { "feature" } else { "main" },
                "env": if run.is_multiple_of(2) { "prod" } else { "staging" },
            },
        })
    };
    let (tests, per_run) = (plan.tests, plan.results_per_run);
    let result = |run: usize, index: usize| {
        let test = (run * per_run + index) % tests;
        let roll = mix(run, index);
        let failed = roll.is_multiple_of(20);
        let kind = (roll >> 8) % FAILURE_KINDS;
        json!({
            "id": index.to_string(),
            "suite": format!("suite {}", test % 100),
            "name": format!("test {test} of the suite"),
            "status": if failed { "failed" } else { "passed" },
            "duration_ms": (test * 37 + run * 11) % 5000,
            "message": failed.then(|| format!(
                "kind {kind}: expected {} but was {} at 0x{:x}", roll % 1000, (roll >> 16) % 1000, roll >> 24
            )),
        })
    };
    let load = Load {
        runs: plan.runs,
        results_per_run: plan.results_per_run,
        batch: plan.batch,
        connections: plan.connections,
    };
    let Stored {
        run_ids, queryable, ..
    } = store_generated(&app, &project, &token, &load, new_run, result).await?;
    for run_id in &run_ids {
        app.post(&token, &format!("/api/v1/runs/{run_id}/finish"), json!({}))
            .await;
    }
    let last = run_ids.last().cloned().unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let run: Value = app
            .get_as(&token, &format!("/api/v1/runs/{last}"))
            .await
            .json()
            .await?;
        if run["status"] != "running" {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the runs never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = plan.runs * plan.results_per_run;

    let results: Value = app
        .get_as(&token, &format!("/api/v1/runs/{last}/results?limit=1"))
        .await
        .json()
        .await?;
    let key = results["items"][0]["test_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let signatures: Value = app
        .get_as(
            &token,
            &format!("/api/v1/projects/{project}/failures?limit=1"),
        )
        .await
        .json()
        .await?;
    let signature = signatures["items"][0]["signature"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let base = format!("/api/v1/projects/{project}");
    let queries = [
        (
            "failure signatures (latest 50 runs)",
            format!("{base}/failures"),
        ),
        (
            "failure signatures, `branch=main`",
            format!("{base}/failures?branch=main"),
        ),
        (
            "results of one signature (first page)",
            format!("{base}/failures/{signature}"),
        ),
        (
            "a run's new failures",
            format!("/api/v1/runs/{last}/failures?new=true"),
        ),
        (
            "test trend (latest 50 runs)",
            format!("{base}/tests/{key}/trend"),
        ),
        (
            "test trend, `attr.env=staging`",
            format!("{base}/tests/{key}/trend?attr.env=staging"),
        ),
        ("project trend (30 days)", format!("{base}/trend")),
        (
            "slowest tests (latest 10 runs)",
            format!("{base}/tests/slowest"),
        ),
        (
            "catalog search, a match (`test 1234`)",
            format!("{base}/tests?q=test%201234"),
        ),
        (
            "catalog search, no match (every test read)",
            format!("{base}/tests?q=nosuchtest"),
        ),
        ("catalog, first page", format!("{base}/tests")),
        (
            "flaky tests (latest 50 runs)",
            format!("{base}/tests/flaky"),
        ),
    ];
    println!("| measure | value |");
    println!("| --- | --- |");
    println!(
        "| history | {total} results: {} runs x {}, {} tests, 5 % failed with {FAILURE_KINDS} kinds of message |",
        plan.runs, plan.results_per_run, plan.tests
    );
    println!(
        "| end-to-end ingest (signatures computed on apply) | {:.0} results/s |",
        total as f64 / queryable.as_secs_f64()
    );
    println!();
    println!(
        "Queries through the gateway (HTTP, API token, bus), {} each:",
        plan.queries
    );
    println!();
    println!("| query | p50 | p99 | max |");
    println!("| --- | --- | --- | --- |");
    for (name, path) in queries {
        let summary = time_get(&app, &token, &path, plan.queries).await?;
        println!(
            "| {name} | {} | {} | {} |",
            ms(summary.p50),
            ms(summary.p99),
            ms(summary.max)
        );
    }
    Ok(())
}
