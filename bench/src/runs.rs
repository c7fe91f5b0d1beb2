//! End-to-end ingest throughput (HTTP batches until queryable) against a raw rusqlite
//! insert of the same rows, and query latency over a million stored results.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::stats::{ms, Summary};

/// Results whose message carries this word, for the text search.
const NEEDLE: &str = "timeout";

pub struct Plan {
    pub runs: usize,
    pub results_per_run: usize,
    pub batch: usize,
    pub connections: usize,
    pub queries: usize,
}

fn result(run: usize, index: usize) -> Value {
    let failed = index.is_multiple_of(10);
    json!({
        "id": format!("{run}-{index}"),
        "suite": format!("suite {}", index % 50),
        "name": format!("test number {index} of the suite"),
        "status": if failed { "failed" } else { "passed" },
        "duration_ms": index % 1000,
        "message": if failed { Some(format!("assertion failed: {NEEDLE} after {index} ms")) } else { None },
    })
}

pub async fn run(plan: Plan) -> anyhow::Result<()> {
    let crate::fixture::Reporting {
        app,
        project,
        reporter: token,
        ..
    } = crate::fixture::Reporting::start().await;

    let load = Load {
        runs: plan.runs,
        results_per_run: plan.results_per_run,
        batch: plan.batch,
        connections: plan.connections,
    };
    let Stored {
        run_ids,
        accepted_after,
        queryable,
    } = store(&app, &project, &token, &load).await?;
    let total = plan.runs * plan.results_per_run;
    let end_to_end = total as f64 / queryable.as_secs_f64();

    let raw = raw_insert(plan.runs, plan.results_per_run, plan.batch)?;

    println!("| measure | value |");
    println!("| --- | --- |");
    println!(
        "| results ingested | {total} ({} runs x {}, batches of {}, {} connections) |",
        plan.runs, plan.results_per_run, plan.batch, plan.connections
    );
    println!(
        "| all batches answered 202 after | {:.2} s |",
        accepted_after.as_secs_f64()
    );
    println!(
        "| all results queryable after | {:.2} s |",
        queryable.as_secs_f64()
    );
    println!("| end-to-end ingest | {end_to_end:.0} results/s |");
    println!(
        "| raw rusqlite insert of the same rows (same machine, same run) | {raw:.0} results/s |"
    );
    println!(
        "| end-to-end as a fraction of raw | {:.2} |",
        end_to_end / raw
    );
    println!();

    let run_id = &run_ids[run_ids.len() / 2];
    let results: Value = app
        .get_as(&token, &format!("/api/v1/runs/{run_id}/results?limit=1"))
        .await
        .json()
        .await?;
    let key = results["items"][0]["test_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let queries = [
        ("run summary", format!("/api/v1/runs/{run_id}")),
        (
            "first page of failed results",
            format!("/api/v1/runs/{run_id}/results?status=failed&limit=50"),
        ),
        (
            "text search (`timeout`)",
            format!("/api/v1/runs/{run_id}/results?q={NEEDLE}&limit=50"),
        ),
        (
            "test history (first page)",
            format!("/api/v1/projects/{project}/tests/{key}/history?limit=50"),
        ),
    ];
    println!("Queries over {total} stored results, through the gateway (HTTP, JWT-free API token, bus), {} each:", plan.queries);
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

/// Latencies of `times` GETs of `path` (after 20 untimed ones), each read to its end.
pub async fn time_get(
    app: &verdict_testkit::TestApp,
    token: &str,
    path: &str,
    times: usize,
) -> anyhow::Result<Summary> {
    for _ in 0..20 {
        app.get_as(token, path).await.bytes().await?;
    }
    let mut samples = Vec::with_capacity(times);
    for _ in 0..times {
        let started = Instant::now();
        let response = app.get_as(token, path).await;
        anyhow::ensure!(response.status() == 200, "{path}: {}", response.status());
        response.bytes().await?;
        samples.push(started.elapsed());
    }
    Ok(Summary::of(samples))
}

/// How many results to store, and how.
pub struct Load {
    pub runs: usize,
    pub results_per_run: usize,
    pub batch: usize,
    pub connections: usize,
}

/// What [`store`] did: the runs it made, when every batch had its 202 and when every
/// result was queryable (both from the first POST).
pub struct Stored {
    pub run_ids: Vec<String>,
    pub accepted_after: Duration,
    pub queryable: Duration,
}

/// Creates `load.runs` runs and posts their results through the API, in batches over
/// keep-alive connections; returns once the last run counts all of its results.
pub async fn store(
    app: &verdict_testkit::TestApp,
    project: &str,
    token: &str,
    load: &Load,
) -> anyhow::Result<Stored> {
    store_generated(
        app,
        project,
        token,
        load,
        |run| json!({ "name": format!("run {run}") }),
        result,
    )
    .await
}

/// [`store`] with runs made by `new_run(run)` and results by `result(run, index)`.
pub async fn store_generated(
    app: &verdict_testkit::TestApp,
    project: &str,
    token: &str,
    load: &Load,
    new_run: impl Fn(usize) -> Value,
    result: impl Fn(usize, usize) -> Value,
) -> anyhow::Result<Stored> {
    let mut run_ids = Vec::new();
    for run in 0..load.runs {
        let created: Value = app
            .post(
                token,
                &format!("/api/v1/projects/{project}/runs"),
                new_run(run),
            )
            .await
            .json()
            .await?;
        run_ids.push(created["id"].as_str().unwrap_or_default().to_owned());
    }
    // Bodies are made before the clock starts: the load generator shares the cores.
    let mut bodies = Vec::new();
    for (run, run_id) in run_ids.iter().enumerate() {
        for start in (0..load.results_per_run).step_by(load.batch) {
            let results: Vec<Value> = (start..(start + load.batch).min(load.results_per_run))
                .map(|i| result(run, i))
                .collect();
            bodies.push((
                run_id.clone(),
                serde_json::to_vec(&json!({ "results": results }))?,
            ));
        }
    }

    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(load.connections));
    let mut posts = tokio::task::JoinSet::new();
    for (run_id, body) in bodies {
        let permit = permits.clone().acquire_owned().await?;
        let (http, url, token) = (
            app.http.clone(),
            app.url(&format!("/api/v1/runs/{run_id}/results")),
            token.to_owned(),
        );
        posts.spawn(async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            drop(permit);
            response.map(|r| r.status().as_u16())
        });
    }
    while let Some(done) = posts.join_next().await {
        let status = done??;
        anyhow::ensure!(status == 202, "a batch got {status}");
    }
    let accepted_after = started.elapsed();
    let last = run_ids.last().cloned().unwrap_or_default();
    loop {
        let run: Value = app
            .get_as(token, &format!("/api/v1/runs/{last}"))
            .await
            .json()
            .await?;
        if run["counts"]["total"].as_u64() == Some(load.results_per_run as u64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let queryable = started.elapsed();
    Ok(Stored {
        run_ids,
        accepted_after,
        queryable,
    })
}

/// The same rows inserted with rusqlite directly: one prepared statement, one
/// transaction per batch, the same pragmas, no bus, no indexes beyond the key.
fn raw_insert(runs: usize, per_run: usize, batch: usize) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut conn = rusqlite::Connection::open(dir.path().join("raw.db"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE results (seq INTEGER PRIMARY KEY, run_id TEXT, id TEXT, suite TEXT, name TEXT,
         status TEXT, duration_ms INTEGER, message TEXT)",
    )?;
    let rows: Vec<(String, Value)> = (0..runs)
        .flat_map(|run| (0..per_run).map(move |i| (format!("run-{run}"), result(run, i))))
        .collect();
    let started = Instant::now();
    for chunk in rows.chunks(batch) {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO results (run_id, id, suite, name, status, duration_ms, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (run_id, row) in chunk {
                insert.execute(rusqlite::params![
                    run_id,
                    row["id"].as_str(),
                    row["suite"].as_str(),
                    row["name"].as_str(),
                    row["status"].as_str(),
                    row["duration_ms"].as_u64(),
                    row["message"].as_str()
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(rows.len() as f64 / started.elapsed().as_secs_f64())
}
