//! Runs: created, read, listed by project, counted, finished, deleted.

use std::collections::BTreeMap;

use verdict_contracts::ids::{ProjectId, RunId};
use verdict_store::rusqlite::{self, params, Connection, OptionalExtension, Row, Transaction};

use super::text::NoteKind;
use super::{boxed, conversion, parsed, prefixed, seq_range};
use crate::domain::{Counts, CountsDelta, Finishing, RunStatus};

/// The columns of a run, in the order [`run_row`] reads them.
pub(super) const RUN_COLUMNS: &str =
    "id, project_id, name, status, attributes, started_at, finished_at, \
     total, passed, failed, skipped, errored, flaky, rid, build_key, shards_expected, \
     shards_joined, shards_finished, finish_requested, finish_interrupted, last_finish_at, \
     quarantined";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    /// The run's integer key in this database; it never leaves the service.
    pub rid: i64,
    pub id: RunId,
    pub project_id: ProjectId,
    pub name: String,
    pub status: RunStatus,
    pub attributes: BTreeMap<String, String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub counts: Counts,
    /// The CI build it stands for, if created with one.
    pub build_key: Option<String>,
    pub finishing: Finishing,
}

pub(super) fn run_row(row: &Row<'_>) -> rusqlite::Result<RunRow> {
    let attributes: String = row.get(4)?;
    Ok(RunRow {
        rid: row.get(13)?,
        id: row.get(0)?,
        project_id: row.get(1)?,
        name: row.get(2)?,
        status: parsed(row, 3)?,
        attributes: serde_json::from_str(&attributes).map_err(conversion)?,
        started_at: row.get(5)?,
        finished_at: row.get(6)?,
        counts: Counts {
            total: row.get(7)?,
            passed: row.get(8)?,
            failed: row.get(9)?,
            skipped: row.get(10)?,
            errored: row.get(11)?,
            flaky: row.get(12)?,
            quarantined: row.get(21)?,
        },
        build_key: row.get(14)?,
        finishing: Finishing {
            shards_expected: row.get(15)?,
            shards_joined: row.get(16)?,
            shards_finished: row.get(17)?,
            requested: row.get(18)?,
            interrupted: row.get(19)?,
            last_finish_at: row.get(20)?,
        },
    })
}

/// Stores a new run and gives it its integer key.
pub fn insert_run(tx: &Transaction<'_>, run: &mut RunRow) -> rusqlite::Result<()> {
    let attributes = serde_json::to_string(&run.attributes).map_err(conversion)?;
    run.rid = tx.query_row(
        "INSERT INTO runs (id, project_id, name, status, attributes, started_at, last_activity,
                           build_key, shards_expected)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8) RETURNING rid",
        params![
            run.id,
            run.project_id,
            run.name,
            run.status.as_str(),
            attributes,
            run.started_at,
            run.build_key,
            run.finishing.shards_expected
        ],
        |row| row.get(0),
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO run_attributes (run_id, key, value, project_id, started_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (key, value) in &run.attributes {
        insert.execute(params![run.id, key, value, run.project_id, run.started_at])?;
    }
    Ok(())
}

pub fn run(conn: &Connection, id: RunId) -> rusqlite::Result<Option<RunRow>> {
    conn.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?
        .query_row([id], run_row)
        .optional()
}

/// The project's run of a CI build.
pub fn run_by_build_key(
    conn: &Connection,
    project_id: ProjectId,
    build_key: &str,
) -> rusqlite::Result<Option<RunRow>> {
    conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE project_id = ?1 AND build_key = ?2"
    ))?
    .query_row(params![project_id, build_key], run_row)
    .optional()
}

/// How a project's runs are filtered.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub attributes: BTreeMap<String, String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// `(started_at, id)` of the last run of the previous page.
    pub after: Option<(i64, String)>,
}

/// A project's runs, newest first. The first attribute filter (if any) drives the
/// attribute index; otherwise the status (if any) or the project index does.
pub fn list_runs(
    conn: &Connection,
    project_id: ProjectId,
    filter: &RunFilter,
    limit: u32,
) -> rusqlite::Result<Vec<RunRow>> {
    let mut sql;
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
    let mut attributes = filter.attributes.iter();
    if let Some((key, value)) = attributes.next() {
        sql = format!(
            "SELECT {} FROM run_attributes a JOIN runs r ON r.id = a.run_id
             WHERE a.project_id = ? AND a.key = ? AND a.value = ?",
            prefixed(RUN_COLUMNS, "r.")
        );
        args.extend([Box::new(project_id), boxed(key), boxed(value)]);
        keyset(&mut sql, &mut args, filter, "a.started_at", "a.run_id");
        for (key, value) in attributes {
            sql.push_str(" AND EXISTS (SELECT 1 FROM run_attributes b WHERE b.run_id = a.run_id AND b.key = ? AND b.value = ?)");
            args.extend([boxed(key), boxed(value)]);
        }
        if let Some(status) = filter.status {
            sql.push_str(" AND r.status = ?");
            args.push(boxed(status.as_str()));
        }
        sql.push_str(" ORDER BY a.started_at DESC, a.run_id DESC LIMIT ?");
    } else {
        sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE project_id = ?");
        args.push(Box::new(project_id));
        if let Some(status) = filter.status {
            sql.push_str(" AND status = ?");
            args.push(boxed(status.as_str()));
        }
        keyset(&mut sql, &mut args, filter, "started_at", "id");
        sql.push_str(" ORDER BY started_at DESC, id DESC LIMIT ?");
    }
    args.push(Box::new(limit));
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(args.iter()), run_row)?;
    rows.collect()
}

fn keyset(
    sql: &mut String,
    args: &mut Vec<Box<dyn rusqlite::ToSql>>,
    filter: &RunFilter,
    started: &str,
    id: &str,
) {
    if let Some(since) = filter.since {
        sql.push_str(&format!(" AND {started} >= ?"));
        args.push(Box::new(since));
    }
    if let Some(until) = filter.until {
        sql.push_str(&format!(" AND {started} < ?"));
        args.push(Box::new(until));
    }
    if let Some((after_started, after_id)) = &filter.after {
        sql.push_str(&format!(" AND ({started}, {id}) < (?, ?)"));
        args.push(Box::new(*after_started));
        args.push(boxed(after_id));
    }
}

/// Adds the batch's counter changes to the run and marks it active.
pub fn add_counts(
    tx: &Transaction<'_>,
    run: &RunRow,
    delta: &CountsDelta,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE runs SET total = total + ?2, passed = passed + ?3, failed = failed + ?4,
            skipped = skipped + ?5, errored = errored + ?6, flaky = flaky + ?7, last_activity = ?8
         WHERE rid = ?1",
    )?
    .execute(params![
        run.rid,
        delta.total,
        delta.passed,
        delta.failed,
        delta.skipped,
        delta.errored,
        delta.flaky,
        now
    ])?;
    Ok(())
}

/// Ends a run with its status and the number of its failures that were quarantined.
pub fn finish_run(
    tx: &Transaction<'_>,
    run_id: RunId,
    status: RunStatus,
    finished_at: i64,
    quarantined: u64,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE runs SET status = ?2, finished_at = ?3, last_activity = ?3, quarantined = ?4
         WHERE id = ?1",
        params![run_id, status.as_str(), finished_at, quarantined],
    )?;
    Ok(())
}

/// Running runs with no activity since `before`.
pub fn stale_runs(conn: &Connection, before: i64, limit: u32) -> rusqlite::Result<Vec<RunId>> {
    let mut statement = conn.prepare_cached(
        "SELECT id FROM runs WHERE status = 'running' AND last_activity < ?1 ORDER BY last_activity LIMIT ?2",
    )?;
    let rows = statement.query_map(params![before, limit], |row| row.get(0))?;
    rows.collect()
}

/// Runs started before `before`, oldest first.
pub fn runs_older_than(
    conn: &Connection,
    before: i64,
    limit: u32,
) -> rusqlite::Result<Vec<(RunId, ProjectId)>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, project_id FROM runs WHERE started_at < ?1 ORDER BY started_at LIMIT ?2",
    )?;
    let rows = statement.query_map(params![before, limit], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

/// Removes a run with its results, outcomes, attributes and text index entries.
pub fn delete_run(tx: &Transaction<'_>, run_id: RunId) -> rusqlite::Result<bool> {
    let rid: Option<i64> = tx
        .query_row("SELECT rid FROM runs WHERE id = ?1", [run_id], |row| {
            row.get(0)
        })
        .optional()?;
    let Some(rid) = rid else {
        return Ok(false);
    };
    delete_results(tx, rid)?;
    tx.execute("DELETE FROM run_shards WHERE run = ?1", [rid])?;
    tx.execute("DELETE FROM run_attributes WHERE run_id = ?1", [run_id])?;
    tx.execute("DELETE FROM imports WHERE run_id = ?1", [run_id])?;
    Ok(tx.execute("DELETE FROM runs WHERE rid = ?1", [rid])? == 1)
}

/// Removes a run's results and outcomes (not its counters), and notes the results for
/// the text indexer, which removes their text.
fn delete_results(tx: &Transaction<'_>, rid: i64) -> rusqlite::Result<()> {
    let (first, last) = seq_range(rid);
    tx.execute(
        "INSERT INTO text_queue (first, last, kind)
         SELECT min(seq), max(seq), ?3 FROM results WHERE seq BETWEEN ?1 AND ?2 HAVING count(*) > 0",
        params![first, last, NoteKind::Remove],
    )?;
    tx.execute(
        "DELETE FROM results WHERE seq BETWEEN ?1 AND ?2",
        [first, last],
    )?;
    tx.execute("DELETE FROM test_outcomes WHERE run = ?1", [rid])?;
    tx.execute("DELETE FROM failures WHERE run = ?1", [rid])?;
    Ok(())
}

/// Empties a run: its results, outcomes and text go, its counters return to zero.
pub fn clear_run(tx: &Transaction<'_>, run: &RunRow) -> rusqlite::Result<()> {
    delete_results(tx, run.rid)?;
    tx.execute(
        "UPDATE runs SET total = 0, passed = 0, failed = 0, skipped = 0, errored = 0, flaky = 0
         WHERE rid = ?1",
        [run.rid],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::assert_index_scan;

    #[test]
    fn a_projects_runs_come_from_the_project_index() {
        assert_index_scan(
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE project_id = ? AND (started_at, id) < (?, ?) ORDER BY started_at DESC, id DESC LIMIT ?"),
            "runs_by_project",
        );
    }

    #[test]
    fn runs_by_status_come_from_the_status_index() {
        assert_index_scan(
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE project_id = ? AND status = ? ORDER BY started_at DESC, id DESC LIMIT ?"),
            "runs_by_project_status",
        );
    }

    #[test]
    fn runs_by_attribute_come_from_the_attribute_index() {
        assert_index_scan(
            &format!(
                "SELECT {} FROM run_attributes a JOIN runs r ON r.id = a.run_id
                 WHERE a.project_id = ? AND a.key = ? AND a.value = ? ORDER BY a.started_at DESC, a.run_id DESC LIMIT ?",
                prefixed(RUN_COLUMNS, "r.")
            ),
            "run_attributes_lookup",
        );
    }

    #[test]
    fn a_builds_run_is_found_through_the_build_key_index() {
        assert_index_scan(
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE project_id = ?1 AND build_key = ?2"),
            "runs_by_build_key",
        );
    }

    #[test]
    fn stale_runs_come_from_the_running_index() {
        assert_index_scan(
            "SELECT id FROM runs WHERE status = 'running' AND last_activity < ? ORDER BY last_activity LIMIT ?",
            "runs_running",
        );
    }
}
