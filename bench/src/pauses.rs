//! Ingest pauses after a burst (issue #20): the same burst, each time on a fresh
//! `verdict up`, and for each the longest interval in which no result became visible
//! while accepted results were waiting.

use std::sync::Arc;
use std::time::Duration;

use crate::burst::{self, Plan, Target, Workload};
use crate::up::UpSystem;

/// The longest pause the issue allows.
const PAUSE_LIMIT: Duration = Duration::from_secs(5);

pub async fn run(repeat: usize, plan: Plan, drain_limit: Duration) -> anyhow::Result<()> {
    let workload = match plan.workload {
        Workload::NewTests => "every result a new test".to_owned(),
        Workload::RepeatingSuite { tests } => format!("runs of a {tests}-test suite"),
    };
    println!(
        "Burst: {} connections, batches of {}, {} s, {workload}; each on a fresh `verdict up`.",
        plan.connections,
        plan.batch,
        plan.duration.as_secs()
    );
    println!();
    println!("| # | batches (all 202) | results | posting | all counted after | ingest | longest pause | delivered again |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut longest = Duration::ZERO;
    for round in 1..=repeat {
        let system = UpSystem::start().await?;
        let (project, token) = system.reporter().await?;
        let target = Arc::new(Target {
            http: system.http.clone(),
            base_url: system.base_url.clone(),
            project,
            token,
            counting: burst::Counting::ProjectRuns,
        });
        let outcome = burst::run(target, plan, drain_limit).await?;
        let redelivered = system.ingest_redeliveries().await?;
        system.stop().await?;
        longest = longest.max(outcome.longest_pause);
        println!(
            "| {round} | {} | {} | {:.1} s | {:.1} s | {:.0} results/s | {:.2} s | {redelivered} |",
            outcome.batches,
            outcome.accepted,
            outcome.posting.as_secs_f64(),
            outcome.queryable.as_secs_f64(),
            outcome.accepted as f64 / outcome.queryable.as_secs_f64(),
            outcome.longest_pause.as_secs_f64(),
        );
    }
    println!();
    println!(
        "Longest pause over {repeat} bursts: {:.2} s (limit {} s, read every {} ms).",
        longest.as_secs_f64(),
        PAUSE_LIMIT.as_secs(),
        burst::WATCH_EVERY.as_millis()
    );
    anyhow::ensure!(longest <= PAUSE_LIMIT, "a pause exceeded {PAUSE_LIMIT:?}");
    Ok(())
}
