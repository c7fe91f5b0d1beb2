//! Webhook deliveries: the latency from a run's finish (the 202 of `POST
//! /runs/{run}/finish`) to the receiver getting its signed delivery, one run at a time;
//! and the delivery rate with many webhooks in one project, every run finished at once.
//! The receiver is an HTTP server on loopback in this process (allowed by
//! `VERDICT_NOTIFY_ALLOWED_NETWORKS`), answering 200 at once.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use verdict_testkit::{Receiver, TestApp};

use crate::stats::{ms, Summary};

const WAIT: Duration = Duration::from_secs(600);

/// What to measure.
pub struct Plan {
    /// Runs finished one after another for the latency.
    pub runs: usize,
    /// Webhooks of the throughput project.
    pub webhooks: usize,
    /// Runs finished together for the throughput (each delivered to every webhook).
    pub burst_runs: usize,
}

pub async fn run(plan: Plan) -> anyhow::Result<()> {
    let webhooks = plan.webhooks.to_string();
    let app = TestApp::spawn_with(&[
        ("VERDICT_NOTIFY_ALLOWED_NETWORKS", "127.0.0.1"),
        ("VERDICT_NOTIFY_MAX_WEBHOOKS", &webhooks),
        ("VERDICT_RATE_READ", "1000000/s"),
        ("VERDICT_RATE_WRITE", "1000000/s"),
    ])
    .await;
    let token = app.admin_token().await;
    let receiver = Receiver::start().await;

    app.project(&token, "latency").await;
    add_webhook(&app, &token, "latency", &receiver).await?;
    let mut latencies = Vec::with_capacity(plan.runs);
    for _ in 0..plan.runs {
        let before = receiver.received().len();
        let run_id = reported_run(&app, &token, "latency").await?;
        let finished = finish(&app, &token, &run_id).await?;
        let arrived = receiver.wait_for(before + 1, WAIT).await[before].at;
        latencies.push(arrived.saturating_duration_since(finished));
    }

    app.project(&token, "fanout").await;
    for _ in 0..plan.webhooks {
        add_webhook(&app, &token, "fanout", &receiver).await?;
    }
    let mut runs = Vec::with_capacity(plan.burst_runs);
    for _ in 0..plan.burst_runs {
        runs.push(reported_run(&app, &token, "fanout").await?);
    }
    let before = receiver.received().len();
    let expected = plan.webhooks * plan.burst_runs;
    let started = Instant::now();
    for run_id in &runs {
        finish(&app, &token, run_id).await?;
    }
    let received = receiver.wait_for(before + expected, WAIT).await;
    let last = received[before..]
        .iter()
        .map(|request| request.at)
        .max()
        .unwrap_or(started);
    let elapsed = last.saturating_duration_since(started);

    let latency = Summary::of(latencies);
    println!("| measure | n | p50 | p95 | p99 | max |");
    println!("| --- | --- | --- | --- | --- | --- |");
    println!(
        "| run finished (202) -> webhook received | {} | {} | {} | {} | {} |",
        latency.count,
        ms(latency.p50),
        ms(latency.p95),
        ms(latency.p99),
        ms(latency.max)
    );
    println!();
    println!(
        "{expected} deliveries ({} webhooks x {} runs) in {:.2} s: {:.0} deliveries/s",
        plan.webhooks,
        plan.burst_runs,
        elapsed.as_secs_f64(),
        expected as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

async fn add_webhook(
    app: &TestApp,
    token: &str,
    project: &str,
    receiver: &Receiver,
) -> anyhow::Result<()> {
    let response = app
        .post(
            token,
            &format!("/api/v1/projects/{project}/webhooks"),
            json!({ "url": receiver.url("/hook"), "events": ["run.finished"] }),
        )
        .await;
    anyhow::ensure!(
        response.status() == 201,
        "creating a webhook: {}",
        response.status()
    );
    Ok(())
}

/// A run with one failed test, not finished yet; its id.
async fn reported_run(app: &TestApp, token: &str, project: &str) -> anyhow::Result<String> {
    let created: Value = app
        .post(
            token,
            &format!("/api/v1/projects/{project}/runs"),
            json!({ "name": "bench" }),
        )
        .await
        .json()
        .await?;
    let run_id = created["id"].as_str().unwrap_or_default().to_owned();
    let results = json!({ "results": [{ "name": "t", "status": "failed", "message": "boom" }] });
    let posted = app
        .post(token, &format!("/api/v1/runs/{run_id}/results"), results)
        .await;
    anyhow::ensure!(posted.status() == 202, "results: {}", posted.status());
    Ok(run_id)
}

/// Finishes the run; answers when the 202 arrived.
async fn finish(app: &TestApp, token: &str, run_id: &str) -> anyhow::Result<Instant> {
    let response = app
        .post(token, &format!("/api/v1/runs/{run_id}/finish"), json!({}))
        .await;
    let at = Instant::now();
    anyhow::ensure!(response.status() == 202, "finish: {}", response.status());
    Ok(at)
}
