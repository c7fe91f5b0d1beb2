//! Periodic upkeep: runs that went quiet become `interrupted`, and runs past the
//! retention period are deleted (with their artifacts, via `run.deleted`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use verdict_contracts::Timestamp;

use crate::context::Runs;
use crate::domain::FinishReason;
use crate::store;
use crate::Error;
use crate::{finish, run_commands};

/// Runs handled per pass, so one pass never holds the writer for long.
const PER_PASS: u32 = 100;

pub async fn run(
    runs: Runs,
    every: Duration,
    run_timeout: Duration,
    retention: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(err) = interrupt_stale(&runs, run_timeout).await {
            tracing::error!(error = %err, "interrupting stale runs failed");
        }
        if !retention.is_zero() {
            if let Err(err) = delete_expired(&runs, retention).await {
                tracing::error!(error = %err, "deleting runs past retention failed");
            }
        }
    }
}

async fn interrupt_stale(runs: &Runs, timeout: Duration) -> Result<(), Error> {
    let now = Timestamp::now().millis();
    let before = now - timeout.as_millis() as i64;
    let finished = runs
        .store
        .write(move |conn| {
            let tx = conn.transaction()?;
            let mut events = Vec::new();
            for run_id in store::stale_runs(&tx, before, PER_PASS)? {
                if let Some(run) = store::run(&tx, run_id)? {
                    events.push(finish::end(&tx, run, FinishReason::Interrupted, now)?.0);
                }
            }
            tx.commit()?;
            Ok::<_, Error>(events)
        })
        .await?;
    for event in &finished {
        runs.publish(event).await;
    }
    Ok(())
}

async fn delete_expired(runs: &Runs, retention: Duration) -> Result<(), Error> {
    let before = Timestamp::now().millis() - retention.as_millis() as i64;
    let expired = runs
        .store
        .read(move |conn| Ok::<_, Error>(store::runs_older_than(conn, before, PER_PASS)?))
        .await?;
    for (run_id, project_id) in expired {
        tracing::info!(%run_id, "deleting a run past the retention period");
        run_commands::remove(runs, run_id, project_id).await?;
    }
    Ok(())
}
