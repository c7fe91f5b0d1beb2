//! Ingest pauses after a burst (issue #20): the same burst, each time on a fresh
//! `verdict up`, and for each the longest interval in which no result became visible
//! while accepted results were waiting.

use std::time::Duration;

use crate::burst::{self, Plan, Target, Workload};
use crate::up::UpSystem;

/// The longest pause the issue allows.
const PAUSE_LIMIT: Duration = Duration::from_secs(5);

pub async fn run(
    repeat: usize,
    parallel: usize,
    plan: Plan,
    drain_limit: Duration,
) -> anyhow::Result<()> {
    let workload = match plan.workload {
        Workload::NewTests => "every result a new test".to_owned(),
        Workload::RepeatingSuite { tests } => format!("runs of a {tests}-test suite"),
    };
    let at_once = match parallel {
        1 => String::new(),
        n => format!(", {n} systems at once, each with its own burst"),
    };
    println!(
        "Burst: {} connections, batches of {}, {} s, {workload}; each on a fresh `verdict up`{at_once}.",
        plan.connections,
        plan.batch,
        plan.duration.as_secs()
    );
    println!();
    println!("| # | batches (all 202) | results | posting | all counted after | ingest | longest pause | delivered again |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut longest = Duration::ZERO;
    let rounds: Vec<usize> = (1..=repeat).collect();
    for group in rounds.chunks(parallel.max(1)) {
        let outcomes =
            futures::future::try_join_all(group.iter().map(|_| round(plan, drain_limit))).await?;
        for (number, (outcome, redelivered)) in group.iter().zip(outcomes) {
            longest = longest.max(outcome.longest_pause);
            println!(
                "| {number} | {} | {} | {:.1} s | {:.1} s | {:.0} results/s | {:.2} s | {redelivered} |",
                outcome.batches,
                outcome.accepted,
                outcome.posting.as_secs_f64(),
                outcome.queryable.as_secs_f64(),
                outcome.accepted as f64 / outcome.queryable.as_secs_f64(),
                outcome.longest_pause.as_secs_f64(),
            );
        }
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

/// One burst on a fresh system: what it measured, and how often the runs consumer was
/// handed a message again.
async fn round(plan: Plan, drain_limit: Duration) -> anyhow::Result<(burst::Outcome, u64)> {
    let system = UpSystem::start().await?;
    let target = Target::on(&system).await?;
    let outcome = burst::run(target, plan, drain_limit).await?;
    let redelivered = system.ingest_redeliveries().await?;
    system.stop().await?;
    Ok((outcome, redelivered))
}
