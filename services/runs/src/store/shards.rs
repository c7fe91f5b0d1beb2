//! Shards of a CI build's run and how finishing them finishes the run.

use verdict_store::rusqlite::{self, params, Connection, OptionalExtension, Transaction};

use super::RunRow;

/// One shard of a run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRow {
    pub shard: String,
    pub joined_at: i64,
    pub finished_at: Option<i64>,
    pub interrupted: bool,
}

pub fn shard(conn: &Connection, rid: i64, shard: &str) -> rusqlite::Result<Option<ShardRow>> {
    conn.prepare_cached(
        "SELECT shard, joined_at, finished_at, interrupted FROM run_shards WHERE run = ?1 AND shard = ?2",
    )?
    .query_row(params![rid, shard], |row| {
        Ok(ShardRow {
            shard: row.get(0)?,
            joined_at: row.get(1)?,
            finished_at: row.get(2)?,
            interrupted: row.get(3)?,
        })
    })
    .optional()
}

/// Adds a shard to the run, running (a shard that had finished runs again); keeps the
/// run's shard counters.
pub fn join_shard(
    tx: &Transaction<'_>,
    run: &RunRow,
    name: &str,
    now: i64,
) -> rusqlite::Result<()> {
    match shard(tx, run.rid, name)? {
        None => {
            tx.prepare_cached(
                "INSERT INTO run_shards (run, shard, joined_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![run.rid, name, now])?;
            tx.prepare_cached("UPDATE runs SET shards_joined = shards_joined + 1 WHERE rid = ?1")?
                .execute([run.rid])?;
        }
        Some(ShardRow {
            finished_at: Some(_),
            ..
        }) => {
            tx.prepare_cached(
                "UPDATE run_shards SET finished_at = NULL, interrupted = 0 WHERE run = ?1 AND shard = ?2",
            )?
            .execute(params![run.rid, name])?;
            tx.prepare_cached(
                "UPDATE runs SET shards_finished = shards_finished - 1 WHERE rid = ?1",
            )?
            .execute([run.rid])?;
        }
        Some(_) => {}
    }
    Ok(())
}

/// Records that a shard finished (joining it first if it never joined); answers
/// whether anything changed.
pub fn finish_shard(
    tx: &Transaction<'_>,
    run: &RunRow,
    name: &str,
    at: i64,
    interrupted: bool,
) -> rusqlite::Result<bool> {
    match shard(tx, run.rid, name)? {
        Some(ShardRow {
            finished_at: Some(_),
            ..
        }) => return Ok(false),
        Some(_) => {
            tx.prepare_cached(
                "UPDATE run_shards SET finished_at = ?3, interrupted = ?4 WHERE run = ?1 AND shard = ?2",
            )?
            .execute(params![run.rid, name, at, interrupted])?;
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO run_shards (run, shard, joined_at, finished_at, interrupted)
                 VALUES (?1, ?2, ?3, ?3, ?4)",
            )?
            .execute(params![run.rid, name, at, interrupted])?;
            tx.prepare_cached("UPDATE runs SET shards_joined = shards_joined + 1 WHERE rid = ?1")?
                .execute([run.rid])?;
        }
    }
    tx.prepare_cached(
        "UPDATE runs SET shards_finished = shards_finished + 1,
            last_finish_at = max(coalesce(last_finish_at, ?2), ?2) WHERE rid = ?1",
    )?
    .execute(params![run.rid, at])?;
    Ok(true)
}

/// Whether any shard of the run finished interrupted.
pub fn any_shard_interrupted(conn: &Connection, rid: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM run_shards WHERE run = ?1 AND interrupted)")?
        .query_row([rid], |row| row.get(0))
}

/// Raises the number of shards the run waits for to at least `shards`.
pub fn expect_shards(tx: &Transaction<'_>, run: &RunRow, shards: u32) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE runs SET shards_expected = max(coalesce(shards_expected, 0), ?2) WHERE rid = ?1",
    )?
    .execute(params![run.rid, shards])?;
    Ok(())
}

/// Records a finish of the whole run, to be applied once nothing holds it up.
pub fn request_finish(
    tx: &Transaction<'_>,
    run: &RunRow,
    at: i64,
    interrupted: bool,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE runs SET finish_requested = 1, finish_interrupted = finish_interrupted OR ?3,
            last_finish_at = max(coalesce(last_finish_at, ?2), ?2) WHERE rid = ?1",
    )?
    .execute(params![run.rid, at, interrupted])?;
    Ok(())
}

/// Makes a finished run running again (a shard joined it), forgetting the finish of the
/// whole run it had been given.
pub fn reopen(tx: &Transaction<'_>, run: &RunRow, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE runs SET status = 'running', finished_at = NULL, finish_requested = 0,
            finish_interrupted = 0, last_activity = ?2 WHERE rid = ?1",
    )?
    .execute(params![run.rid, now])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use verdict_store::rusqlite::Transaction;

    use super::*;
    use crate::store::tests::{conn, new_run, run_of};

    #[test]
    fn shards_are_counted_as_they_join_finish_and_join_again() {
        let mut conn = conn();
        let run = new_run(&mut conn);
        let tx = conn.transaction().unwrap();
        let counts = |tx: &Transaction<'_>| {
            let f = run_of(tx, run.id).finishing;
            (f.shards_joined, f.shards_finished, f.last_finish_at)
        };
        join_shard(&tx, &run, "a", 10).unwrap();
        join_shard(&tx, &run, "a", 11).unwrap();
        join_shard(&tx, &run, "b", 12).unwrap();
        assert_eq!(counts(&tx), (2, 0, None));
        assert!(finish_shard(&tx, &run, "a", 20, false).unwrap());
        assert!(!finish_shard(&tx, &run, "a", 21, false).unwrap(), "once");
        assert_eq!(counts(&tx), (2, 1, Some(20)));
        assert!(
            finish_shard(&tx, &run, "c", 30, true).unwrap(),
            "joins as it finishes"
        );
        assert_eq!(counts(&tx), (3, 2, Some(30)));
        assert!(any_shard_interrupted(&tx, run.rid).unwrap());
        join_shard(&tx, &run, "c", 40).unwrap();
        assert_eq!(counts(&tx), (3, 1, Some(30)));
        assert!(!any_shard_interrupted(&tx, run.rid).unwrap());
        assert_eq!(shard(&tx, run.rid, "c").unwrap().unwrap().finished_at, None);
    }
}
