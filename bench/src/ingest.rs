//! End-to-end ingest, side by side with the reference implementation of the same API
//! (Express + better-sqlite3, `../shared/peers/node-reference`): the same burst against
//! a fresh `verdict up` and a fresh reference, for runs of a suite whose tests repeat
//! and for one run in which every result is a new test. Results per second from the
//! first post until every accepted result is counted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use tokio::process::{Child, Command};
use verdict_testkit::ports::free_port;

use crate::burst::{self, Counting, Outcome, Plan, Target, Workload};
use crate::up::UpSystem;

/// How long a burst's accepted results may take to be counted after the last post.
const DRAIN_LIMIT: Duration = Duration::from_secs(900);

pub struct Settings {
    pub connections: usize,
    pub batch: usize,
    pub duration: Duration,
    pub suite: usize,
    /// A copy of the reference implementation (with its `run.sh`), if it is to be run.
    pub reference: Option<PathBuf>,
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let workloads = [
        (
            format!("runs of a {}-test suite whose names repeat", settings.suite),
            Workload::RepeatingSuite {
                tests: settings.suite,
            },
        ),
        (
            "one run in which every result is a new test".to_owned(),
            Workload::NewTests,
        ),
    ];
    println!(
        "Burst: {} connections, batches of {}, {} s, then until every accepted result is counted; each server fresh.",
        settings.connections,
        settings.batch,
        settings.duration.as_secs()
    );
    println!();
    println!("| workload | server | results | posting | all counted after | results/s |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut ratios = Vec::new();
    for (name, workload) in workloads {
        let plan = Plan {
            workload,
            connections: settings.connections,
            batch: settings.batch,
            duration: settings.duration,
        };
        let verdict = verdict_burst(plan).await?;
        row(&name, "Verdict (`verdict up`, release)", &verdict);
        if let Some(dir) = &settings.reference {
            let reference = reference_burst(dir, plan).await?;
            row(&name, "reference (Express + better-sqlite3)", &reference);
            ratios.push((name, rate(&verdict) / rate(&reference)));
        }
    }
    if !ratios.is_empty() {
        println!();
        println!("| workload | Verdict / reference |");
        println!("| --- | --- |");
        for (name, ratio) in ratios {
            println!("| {name} | {ratio:.2}x |");
        }
    }
    Ok(())
}

fn rate(outcome: &Outcome) -> f64 {
    outcome.accepted as f64 / outcome.queryable.as_secs_f64()
}

fn row(workload: &str, server: &str, outcome: &Outcome) {
    println!(
        "| {workload} | {server} | {} | {:.1} s | {:.1} s | {:.0} |",
        outcome.accepted,
        outcome.posting.as_secs_f64(),
        outcome.queryable.as_secs_f64(),
        rate(outcome)
    );
}

async fn verdict_burst(plan: Plan) -> anyhow::Result<Outcome> {
    let system = UpSystem::start().await?;
    let target = Target::on(&system).await?;
    let outcome = burst::run(target, plan, DRAIN_LIMIT).await;
    system.stop().await?;
    outcome
}

async fn reference_burst(dir: &Path, plan: Plan) -> anyhow::Result<Outcome> {
    let reference = Reference::start(dir).await?;
    let target = Arc::new(Target {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?,
        base_url: reference.base_url.clone(),
        project: "bench".to_owned(),
        token: reference.token.clone(),
        counting: Counting::EachRun,
    });
    let outcome = burst::run(target, plan, DRAIN_LIMIT).await;
    reference.stop().await;
    outcome
}

/// The reference implementation as its own process, on a fresh data directory.
struct Reference {
    child: Child,
    base_url: String,
    token: String,
    _data: tempfile::TempDir,
}

impl Reference {
    async fn start(dir: &Path) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let port = free_port();
        let child = Command::new("bash")
            .arg(dir.join("run.sh"))
            .arg(port.to_string())
            .arg(data.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting the reference (needs node and npm)")?;
        let token = Command::new("node")
            .arg(dir.join("token.js"))
            .output()
            .await
            .context("making a reference token")?;
        ensure!(token.status.success(), "node token.js failed");
        let reference = Self {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            token: String::from_utf8(token.stdout)?.trim().to_owned(),
            _data: data,
        };
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let health = http
                .get(format!("{}/healthz", reference.base_url))
                .send()
                .await;
            if health.is_ok_and(|r| r.status() == 200) {
                return Ok(reference);
            }
            ensure!(
                started.elapsed() < Duration::from_secs(120),
                "the reference did not start within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
