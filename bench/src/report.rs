//! `verdict report` as a CI job runs it, the release binary against a fresh `verdict up`
//! on this machine: a large JUnit report from the command's start until the run's counts
//! are visible over the API, and many small artifacts until every one is stored.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use serde_json::Value;
use tokio::process::Command;

use crate::fixture::UNLIMITED_RATES;
use crate::import::{write_report, Format};
use crate::process::verdict_binary;
use crate::up::UpSystem;

pub struct Plan {
    /// Size of the JUnit report, in MB.
    pub megabytes: usize,
    /// Small files uploaded with `--artifacts`.
    pub artifacts: usize,
    /// Times each measurement is taken.
    pub repeat: usize,
    /// Run the system without rate limits (the default: the limits a CI job meets).
    pub unlimited_rates: bool,
}

/// What one `verdict report` took.
struct Timing {
    /// From the command's start to its exit.
    command: Duration,
    /// From the command's start until the API showed what it sent.
    visible: Duration,
}

pub async fn run(plan: Plan) -> anyhow::Result<()> {
    let settings: &[(&str, &str)] = if plan.unlimited_rates {
        &UNLIMITED_RATES
    } else {
        &[]
    };
    let system = UpSystem::start_with(settings).await?;
    let (_, token) = system.reporter().await?;
    let dir = tempfile::tempdir()?;

    let report = dir.path().join("junit.xml");
    let cases = write_report(Format::Junit, &report, plan.megabytes)?;
    let size = std::fs::metadata(&report)?.len();
    let mut rows = Vec::new();
    for _ in 0..plan.repeat {
        let timing = report_run(&system, &token, dir.path(), &["junit.xml"], |run| {
            Ok(run["counts"]["total"].as_u64() == Some(cases as u64))
        })
        .await?;
        rows.push(timing);
    }
    print_rows(
        &format!(
            "JUnit report of {:.1} MB, {cases} test cases",
            size as f64 / 1e6
        ),
        &rows,
    );

    let artifacts_dir = tempfile::tempdir()?;
    write_artifacts(artifacts_dir.path(), plan.artifacts)?;
    let mut rows = Vec::new();
    for _ in 0..plan.repeat {
        let expected = plan.artifacts;
        let timing = report_run(
            &system,
            &token,
            artifacts_dir.path(),
            &["--artifacts", "test-results/**/*", "junit.xml"],
            |run| Ok(run["artifacts_stored"].as_u64() == Some(expected as u64)),
        )
        .await?;
        rows.push(timing);
    }
    print_rows(
        &format!(
            "{} artifacts of 1 to 8 KiB (and a report of 1 test)",
            plan.artifacts
        ),
        &rows,
    );
    system.stop().await
}

fn print_rows(what: &str, rows: &[Timing]) {
    for (attempt, timing) in rows.iter().enumerate() {
        println!(
            "| {what} | {} | {:.2} s | {:.2} s |",
            attempt + 1,
            timing.command.as_secs_f64(),
            timing.visible.as_secs_f64()
        );
    }
}

/// A Playwright-style tree of `count` files of 1 to 8 KiB (two per test: a screenshot
/// and a trace), and a report of one test.
fn write_artifacts(dir: &Path, count: usize) -> anyhow::Result<()> {
    for index in 0..count {
        let (test, file) = (index / 2, ["test-failed-1.png", "trace.zip"][index % 2]);
        let path = dir.join(format!("test-results/spec-{test:04}-chromium/{file}"));
        std::fs::create_dir_all(path.parent().context("a parent directory")?)?;
        let size = 1024 * (1 + index % 8);
        std::fs::write(&path, vec![(index % 251) as u8; size])?;
    }
    std::fs::write(
        dir.join("junit.xml"),
        r#"<testsuite name="e2e" tests="1"><testcase classname="e2e" name="loads"/></testsuite>"#,
    )?;
    Ok(())
}

/// Runs `verdict report --project bench --json <args>` in `dir`, then reads the run
/// until `done` says the API shows what was sent (with the number of stored artifacts
/// as `artifacts_stored`).
async fn report_run(
    system: &UpSystem,
    token: &str,
    dir: &Path,
    args: &[&str],
    done: impl Fn(&Value) -> anyhow::Result<bool>,
) -> anyhow::Result<Timing> {
    let started = Instant::now();
    let output = Command::new(verdict_binary()?)
        .args(["report", "--project", "bench", "--no-build-key", "--json"])
        .args(args)
        .current_dir(dir)
        .env("VERDICT_URL", &system.base_url)
        .env("VERDICT_TOKEN", token)
        .stdin(std::process::Stdio::null())
        .output()
        .await?;
    let command = started.elapsed();
    ensure!(
        output.status.success(),
        "verdict report failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document: Value = serde_json::from_slice(&output.stdout)?;
    let run_id = document["run_id"].as_str().context("run_id")?;
    loop {
        let mut run: Value = system
            .http
            .get(system.url(&format!("/api/v1/runs/{run_id}")))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        run["artifacts_stored"] = stored_artifacts(system, token, run_id).await?.into();
        if done(&run)? {
            return Ok(Timing {
                command,
                visible: started.elapsed(),
            });
        }
        ensure!(
            started.elapsed() < Duration::from_secs(300),
            "the run did not show what was sent within 5 minutes: {run}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many artifacts of the run are stored, page by page.
async fn stored_artifacts(system: &UpSystem, token: &str, run_id: &str) -> anyhow::Result<u64> {
    let (mut stored, mut cursor) = (0, None::<String>);
    loop {
        let mut url = format!("/api/v1/runs/{run_id}/artifacts?limit=500");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = system
            .http
            .get(system.url(&url))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        stored += page["items"]
            .as_array()
            .context("items")?
            .iter()
            .filter(|artifact| artifact["state"] == "stored")
            .count() as u64;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(stored),
        }
    }
}
