//! Finishing runs: a finish (of the whole run, or of one shard) is recorded, and the run
//! ends as soon as nothing holds it up any more (see [`Finishing`]): at that finish, or
//! later, when the last shard finishes or the last import into the run is done.

use verdict_contracts::events::Event;
use verdict_contracts::ids::RunId;
use verdict_contracts::runs::shards::MAX_SHARDS;
use verdict_store::rusqlite::Transaction;

use crate::convert;
use crate::domain::{finished_status, Counts, FinishReason, Finishing};
use crate::store::{self, RunRow};
use crate::Error;

/// Records a finish given at `at`: of the shard `shard`, or of the whole run.
pub fn record(
    tx: &Transaction<'_>,
    run: &RunRow,
    shard: Option<&str>,
    at: i64,
    interrupted: bool,
) -> Result<(), Error> {
    match shard {
        Some(shard) => {
            let known = store::shard(tx, run.rid, shard)?.is_some();
            if !known && run.finishing.shards_joined >= MAX_SHARDS {
                tracing::warn!(run_id = %run.id, "a finish names a shard beyond the run's limit; ignored");
                return Ok(());
            }
            store::finish_shard(tx, run, shard, at, interrupted)?;
        }
        None if run.finished_at.is_none() => store::request_finish(tx, run, at, interrupted)?,
        None => {}
    }
    Ok(())
}

/// Ends the run if it is complete and not ended yet; answers the event telling so.
pub fn settle(tx: &Transaction<'_>, run_id: RunId, now: i64) -> Result<Option<Event>, Error> {
    let Some(run) = store::run(tx, run_id)? else {
        return Ok(None);
    };
    if run.finished_at.is_some() {
        return Ok(None);
    }
    let finishing: &Finishing = &run.finishing;
    if !finishing.is_complete(store::pending_imports_into(tx, run.id)?) {
        return Ok(None);
    }
    let reason = finishing.reason(store::any_shard_interrupted(tx, run.rid)?);
    let finished_at = finishing.last_finish_at.unwrap_or(now);
    Ok(Some(end(tx, run, reason, finished_at)?.0))
}

/// Ends the run at `at`: its failures of quarantined tests are counted apart, and only
/// the others fail it. Answers the event telling so, and the run's final counts.
pub fn end(
    tx: &Transaction<'_>,
    run: RunRow,
    reason: FinishReason,
    at: i64,
) -> Result<(Event, Counts), Error> {
    let mut counts = run.counts;
    counts.quarantined = store::triage::quarantined_failures(tx, &run, at)?;
    let status = finished_status(&counts, reason);
    store::finish_run(tx, run.id, status, at, counts.quarantined)?;
    let event = Event::RunFinished {
        project_id: run.project_id,
        run_id: run.id,
        status,
        counts,
        finished_at: convert::rfc3339(at),
    };
    Ok((event, counts))
}
