//! `verdict run` wrapped around a test command that prints a large suite's results:
//! the wall time it adds to the command, and how long after a result's line was
//! printed the result can be queried (`GET /runs/{id}` counts it).
//!
//! The test command is this binary (`run-command-stream`), printing one line per test
//! at a steady rate, flushing each, and writing down when it printed each. Each figure
//! is taken against a fresh `verdict up` (release binary).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context};
use serde_json::Value;
use tokio::process::Command;

use crate::process::verdict_binary;
use crate::stats::{ms, Summary};
use crate::up::UpSystem;

/// How often the run's count is read.
const POLL: Duration = Duration::from_millis(10);

/// What the stream prints.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StreamFormat {
    Tap,
    GoTest,
}

impl StreamFormat {
    fn name(self) -> &'static str {
        match self {
            StreamFormat::Tap => "tap",
            StreamFormat::GoTest => "go-test",
        }
    }
}

pub struct Plan {
    pub tests: usize,
    /// Tests printed per second; 0 prints as fast as the pipe takes them.
    pub rate: usize,
    pub format: StreamFormat,
    pub repeat: usize,
}

/// The test command: prints `tests` results at `rate` per second, then writes each
/// line's print time (nanoseconds since the epoch) to `times`, one a line.
pub fn stream(tests: usize, rate: usize, format: StreamFormat, times: &Path) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut printed = Vec::with_capacity(tests);
    let started = Instant::now();
    if let StreamFormat::Tap = format {
        writeln!(out, "TAP version 13\n1..{tests}")?;
    }
    for n in 1..=tests {
        if rate > 0 {
            let due = started + Duration::from_secs_f64(n as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        match format {
            StreamFormat::Tap => writeln!(out, "ok {n} - suite checks case {n}")?,
            StreamFormat::GoTest => writeln!(
                out,
                r#"{{"Time":"2026-01-01T00:00:00Z","Action":"pass","Package":"example.com/bench","Test":"TestCase{n}","Elapsed":0.001}}"#
            )?,
        }
        out.flush()?;
        printed.push(SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos());
    }
    let text: Vec<String> = printed.iter().map(u128::to_string).collect();
    std::fs::write(times, text.join("\n"))?;
    Ok(())
}

fn stream_command(command: &mut Command, plan: &Plan, times: &Path) -> anyhow::Result<()> {
    command
        .arg("run-command-stream")
        .arg("--tests")
        .arg(plan.tests.to_string())
        .arg("--rate")
        .arg(plan.rate.to_string())
        .arg("--format")
        .arg(plan.format.name())
        .arg("--times")
        .arg(times)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    Ok(())
}

/// Wall time of the stream alone.
async fn alone(plan: &Plan, times: &Path) -> anyhow::Result<Duration> {
    let mut command = Command::new(std::env::current_exe()?);
    stream_command(&mut command, plan, times)?;
    let started = Instant::now();
    let status = command.status().await?;
    ensure!(status.success(), "the stream failed: {status}");
    Ok(started.elapsed())
}

async fn get(system: &UpSystem, token: &str, path: &str) -> anyhow::Result<Value> {
    Ok(system
        .http
        .get(system.url(path))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// One `verdict run` of the stream: its wall time, and each result's print-to-
/// queryable latency.
async fn wrapped(plan: &Plan, times: &Path) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let system = UpSystem::start().await?;
    let (project, token) = system.reporter().await?;
    let mut command = Command::new(verdict_binary()?);
    command
        .arg("run")
        .arg("--project")
        .arg(&project)
        .arg("--url")
        .arg(&system.base_url)
        .env("VERDICT_TOKEN", &token)
        .arg("--")
        .arg(std::env::current_exe()?);
    stream_command(&mut command, plan, times)?;
    let started = Instant::now();
    let mut child = command.spawn().context("starting verdict run")?;

    // When each count was first seen: (time since the epoch, total).
    let mut seen: Vec<(Duration, u64)> = Vec::new();
    let mut run_id = None;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        match &run_id {
            None => {
                let runs =
                    get(&system, &token, &format!("/api/v1/projects/{project}/runs")).await?;
                run_id = runs["items"][0]["id"].as_str().map(str::to_owned);
            }
            Some(id) => {
                let run = get(&system, &token, &format!("/api/v1/runs/{id}")).await?;
                let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
                let total = run["counts"]["total"].as_u64().unwrap_or(0);
                if seen.last().is_none_or(|(_, last)| total > *last) {
                    seen.push((now, total));
                }
            }
        }
        tokio::time::sleep(POLL).await;
    };
    let wall = started.elapsed();
    ensure!(status.success(), "verdict run failed: {status}");
    let id = run_id.context("the run was never seen")?;
    let run = get(&system, &token, &format!("/api/v1/runs/{id}")).await?;
    ensure!(
        run["counts"]["total"].as_u64() == Some(plan.tests as u64),
        "the run holds {} results, not {}",
        run["counts"]["total"],
        plan.tests
    );
    system.stop().await?;

    let printed: Vec<u128> = std::fs::read_to_string(times)?
        .lines()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    // Results arrive in the order they were printed: result i is queryable once the
    // count passes i. Those counted only after the command ended (the last batch, read
    // from the finished run) are left out: no poll saw them.
    let mut latencies = Vec::new();
    for (i, printed) in printed.iter().enumerate() {
        if let Some((at, _)) = seen.iter().find(|(_, total)| *total > i as u64) {
            let printed = Duration::from_nanos(*printed as u64);
            latencies.push(at.saturating_sub(printed));
        }
    }
    Ok((wall, latencies))
}

pub async fn run(plan: Plan) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let times: PathBuf = dir.path().join("times");
    let mut alone_walls = Vec::new();
    let mut wrapped_walls = Vec::new();
    let mut latencies = Vec::new();
    for _ in 0..plan.repeat {
        alone_walls.push(alone(&plan, &times).await?);
        let (wall, mut seen) = wrapped(&plan, &times).await?;
        wrapped_walls.push(wall);
        latencies.append(&mut seen);
    }
    let median = |walls: &mut Vec<Duration>| {
        walls.sort_unstable();
        walls[walls.len() / 2]
    };
    let alone_wall = median(&mut alone_walls);
    let wrapped_wall = median(&mut wrapped_walls);
    let added = wrapped_wall.saturating_sub(alone_wall);
    let rate = if plan.rate == 0 {
        "as fast as the pipe takes them".to_owned()
    } else {
        format!("{} per second", plan.rate)
    };
    println!(
        "`verdict run` over {} tests printed as {} lines, {rate}; medians of {} runs each:\n",
        plan.tests,
        plan.format.name(),
        plan.repeat
    );
    println!("| measure | value |");
    println!("| --- | --- |");
    println!("| the command alone | {} |", ms(alone_wall));
    println!("| under `verdict run` | {} |", ms(wrapped_wall));
    println!(
        "| added wall time | {} ({:.1} %) |",
        ms(added),
        added.as_secs_f64() / alone_wall.as_secs_f64() * 100.0
    );
    if latencies.is_empty() {
        println!("| print → queryable | no result was seen before `verdict run` exited |");
    } else {
        let summary = Summary::of(latencies);
        println!(
            "| print → queryable ({} results seen before `verdict run` exited) | p50 {}, p99 {}, max {} |",
            summary.count,
            ms(summary.p50),
            ms(summary.p99),
            ms(summary.max)
        );
    }
    Ok(())
}
