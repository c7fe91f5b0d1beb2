//! All SQL of the runs service. Functions take a connection so callers choose the
//! transaction. Times are Unix milliseconds; the wire form is made in `convert.rs`.

use std::collections::{BTreeMap, HashMap};

use verdict_store::rusqlite::{self, params, Connection, OptionalExtension, Row, Transaction};
use verdict_store::Migrations;

use crate::domain::{
    Counts, CountsDelta, Finishing, ResultStatus, RunStatus, Signature, TestOutcome,
};

pub mod triage;

pub const MIGRATIONS: Migrations = Migrations(&[
    r#"
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    attributes TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    last_activity INTEGER NOT NULL,
    total INTEGER NOT NULL DEFAULT 0,
    passed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    errored INTEGER NOT NULL DEFAULT 0,
    flaky INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_project ON runs (project_id, started_at DESC, id DESC);
CREATE INDEX runs_by_project_status ON runs (project_id, status, started_at DESC, id DESC);
CREATE INDEX runs_running ON runs (status, last_activity);
CREATE INDEX runs_by_age ON runs (started_at);
CREATE TABLE run_attributes (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    project_id TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX run_attributes_lookup ON run_attributes (project_id, key, value, started_at DESC, run_id DESC);
CREATE TABLE tests (
    project_id TEXT NOT NULL,
    test_key TEXT NOT NULL,
    suite TEXT,
    name TEXT NOT NULL,
    PRIMARY KEY (project_id, test_key)
) WITHOUT ROWID;
CREATE TABLE test_outcomes (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    test_key TEXT NOT NULL,
    project_id TEXT NOT NULL,
    run_started_at INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    failed_earlier INTEGER NOT NULL,
    duration_ms INTEGER,
    PRIMARY KEY (run_id, test_key)
) WITHOUT ROWID;
CREATE INDEX test_history ON test_outcomes (project_id, test_key, run_started_at DESC, run_id DESC);
CREATE TABLE results (
    seq INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    test_key TEXT NOT NULL,
    suite TEXT,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    duration_ms INTEGER,
    started_at INTEGER,
    message TEXT,
    trace TEXT,
    stdout TEXT,
    stderr TEXT,
    attributes TEXT
);
CREATE UNIQUE INDEX results_by_id ON results (run_id, id);
CREATE INDEX results_by_run ON results (run_id, seq);
CREATE INDEX results_by_status ON results (run_id, status);
CREATE INDEX results_by_suite ON results (run_id, suite);
CREATE VIRTUAL TABLE results_text USING fts5 (name, message, content='', contentless_delete=1, tokenize='unicode61');
"#,
    r#"
CREATE TABLE imports (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    format TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    counts TEXT,
    artifact_id TEXT,
    principal TEXT,
    queued_at INTEGER
);
CREATE INDEX imports_queue ON imports (status, queued_at) WHERE artifact_id IS NOT NULL;
"#,
    // Integer keys. Runs and tests get INTEGER PRIMARY KEYs, and results and outcomes
    // refer to them by integer, so the indexes written for every result hold 8-byte
    // integers instead of 36-character ids (the apply step was bound by those B-tree
    // inserts). A result's seq is `(run << 32) + its arrival number in the run`
    // (see `seq_range`): the table itself keeps each run's results together and in
    // order, so `results_by_run` goes, and the status and suite indexes need no run
    // column (their implicit rowid bounds the run). Results refer to their test by
    // integer instead of repeating its 32-character key. The tables are rebuilt; children are
    // dropped before `runs`, so dropping it cascades nowhere. AUTOINCREMENT keeps a
    // deleted run's key, and so its seq range, from being given to a new run.
    r#"
CREATE TABLE runs_v3 (
    rid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    attributes TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    last_activity INTEGER NOT NULL,
    total INTEGER NOT NULL DEFAULT 0,
    passed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    errored INTEGER NOT NULL DEFAULT 0,
    flaky INTEGER NOT NULL DEFAULT 0
);
INSERT INTO runs_v3 (id, project_id, name, status, attributes, started_at, finished_at,
                     last_activity, total, passed, failed, skipped, errored, flaky)
SELECT id, project_id, name, status, attributes, started_at, finished_at,
       last_activity, total, passed, failed, skipped, errored, flaky
FROM runs ORDER BY started_at, id;
CREATE TABLE run_attributes_v3 (
    run_id TEXT NOT NULL REFERENCES runs_v3(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    project_id TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
INSERT INTO run_attributes_v3 (run_id, key, value, project_id, started_at)
SELECT run_id, key, value, project_id, started_at FROM run_attributes;
CREATE TABLE tests_v3 (
    tid INTEGER PRIMARY KEY,
    project_id TEXT NOT NULL,
    test_key TEXT NOT NULL,
    suite TEXT,
    name TEXT NOT NULL,
    UNIQUE (project_id, test_key)
);
INSERT INTO tests_v3 (project_id, test_key, suite, name)
SELECT project_id, test_key, suite, name FROM tests;
-- The writer stored every result's test first; this only makes sure no result can be
-- lost to the join on tests below.
INSERT INTO tests_v3 (project_id, test_key, suite, name)
SELECT r.project_id, o.test_key, o.suite, o.name FROM results o JOIN runs r ON r.id = o.run_id
WHERE true ON CONFLICT DO NOTHING;
CREATE TABLE test_outcomes_v3 (
    run INTEGER NOT NULL REFERENCES runs_v3(rid) ON DELETE CASCADE,
    test INTEGER NOT NULL REFERENCES tests_v3(tid),
    run_started_at INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    failed_earlier INTEGER NOT NULL,
    duration_ms INTEGER,
    PRIMARY KEY (run, test)
) WITHOUT ROWID;
INSERT INTO test_outcomes_v3 (run, test, run_started_at, attempt, status, failed_earlier, duration_ms)
SELECT r.rid, t.tid, o.run_started_at, o.attempt, o.status, o.failed_earlier, o.duration_ms
FROM test_outcomes o
JOIN runs_v3 r ON r.id = o.run_id
JOIN tests_v3 t ON t.project_id = o.project_id AND t.test_key = o.test_key;
CREATE TABLE results_v3 (
    seq INTEGER PRIMARY KEY,
    run INTEGER NOT NULL REFERENCES runs_v3(rid) ON DELETE CASCADE,
    id TEXT NOT NULL,
    test INTEGER NOT NULL REFERENCES tests_v3(tid),
    suite TEXT,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    duration_ms INTEGER,
    started_at INTEGER,
    message TEXT,
    trace TEXT,
    stdout TEXT,
    stderr TEXT,
    attributes TEXT
);
INSERT INTO results_v3 (seq, run, id, test, suite, name, status, attempt, duration_ms,
                        started_at, message, trace, stdout, stderr, attributes)
SELECT (r.rid << 32) + row_number() OVER (PARTITION BY r.rid ORDER BY o.seq),
       r.rid, o.id, t.tid, o.suite, o.name, o.status, o.attempt, o.duration_ms,
       o.started_at, o.message, o.trace, o.stdout, o.stderr, o.attributes
FROM results o
JOIN runs_v3 r ON r.id = o.run_id
JOIN tests_v3 t ON t.project_id = r.project_id AND t.test_key = o.test_key;
DROP TABLE results_text;
DROP TABLE results;
DROP TABLE test_outcomes;
DROP TABLE run_attributes;
DROP TABLE tests;
DROP TABLE runs;
ALTER TABLE runs_v3 RENAME TO runs;
ALTER TABLE run_attributes_v3 RENAME TO run_attributes;
ALTER TABLE tests_v3 RENAME TO tests;
ALTER TABLE test_outcomes_v3 RENAME TO test_outcomes;
ALTER TABLE results_v3 RENAME TO results;
CREATE INDEX runs_by_project ON runs (project_id, started_at DESC, id DESC);
CREATE INDEX runs_by_project_status ON runs (project_id, status, started_at DESC, id DESC);
CREATE INDEX runs_running ON runs (status, last_activity);
CREATE INDEX runs_by_age ON runs (started_at);
CREATE INDEX run_attributes_lookup ON run_attributes (project_id, key, value, started_at DESC, run_id DESC);
CREATE INDEX test_history ON test_outcomes (test, run_started_at DESC, run DESC);
CREATE UNIQUE INDEX results_by_id ON results (run, id);
CREATE INDEX results_by_status ON results (status);
CREATE INDEX results_by_suite ON results (suite) WHERE suite IS NOT NULL;
CREATE VIRTUAL TABLE results_text USING fts5 (name, message, content='', contentless_delete=1, tokenize='unicode61');
INSERT INTO results_text (rowid, name, message) SELECT seq, name, message FROM results;
"#,
    // Version 4: the outbox. A message other services must get about a change is
    // written in the change's transaction and relayed to JetStream afterwards
    // (`outbox.rs`), so a change is never committed without its message, nor told
    // before it is committed. `message_id` is JetStream's de-duplication id.
    r#"
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
"#,
    // The import queue retries with backoff: each import counts its attempts and is
    // taken again only at its next attempt time, earliest first. The report is read
    // without a principal, so none is kept.
    r#"
ALTER TABLE imports ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE imports ADD COLUMN next_attempt_at INTEGER;
UPDATE imports SET next_attempt_at = queued_at;
DROP INDEX imports_queue;
ALTER TABLE imports DROP COLUMN principal;
CREATE INDEX imports_due ON imports (status, next_attempt_at) WHERE artifact_id IS NOT NULL;
"#,
    // What an import noticed in its report without refusing it (JSON array of strings).
    r#"
ALTER TABLE imports ADD COLUMN warnings TEXT;
"#,
    // Runs of sharded CI builds: found by their build key, finished once their shards
    // have; a finish waits for the imports into its run. Imports may go into an
    // existing run.
    r#"
ALTER TABLE runs ADD COLUMN build_key TEXT;
ALTER TABLE runs ADD COLUMN shards_expected INTEGER;
ALTER TABLE runs ADD COLUMN shards_joined INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN shards_finished INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN finish_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN finish_interrupted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN last_finish_at INTEGER;
CREATE UNIQUE INDEX runs_by_build_key ON runs (project_id, build_key) WHERE build_key IS NOT NULL;
CREATE TABLE run_shards (
    run INTEGER NOT NULL REFERENCES runs(rid) ON DELETE CASCADE,
    shard TEXT NOT NULL,
    joined_at INTEGER NOT NULL,
    finished_at INTEGER,
    interrupted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run, shard)
) WITHOUT ROWID;
ALTER TABLE imports ADD COLUMN into_run INTEGER NOT NULL DEFAULT 0;
CREATE INDEX imports_by_run ON imports (run_id, status);
"#,
    verdict_store::idempotency::MIGRATION,
    // The message of the result that settled each outcome, so a test's history says why
    // it failed without reading every result of its runs.
    r#"
ALTER TABLE test_outcomes ADD COLUMN message TEXT;
"#,
    // Triage (issue #16): failure signatures, quarantines.
    triage::MIGRATION,
    // The catalog search matches every test of a project by name and suite: with both in
    // the index it reads one range of it instead of looking up each test in the table.
    r#"
CREATE INDEX tests_catalog ON tests (project_id, test_key, name, suite);
"#,
]);

/// Runs one of the outcome statements (first insert or upsert), which take the same
/// columns; the count of rows written.
fn write_outcome(
    statement: &mut rusqlite::CachedStatement<'_>,
    run: &RunRow,
    test: i64,
    outcome: &TestOutcome,
    duration_ms: Option<u64>,
    message: Option<&str>,
) -> rusqlite::Result<usize> {
    statement.execute(params![
        run.rid,
        test,
        run.started_at,
        outcome.attempt.get(),
        outcome.status.as_str(),
        outcome.failed_earlier,
        duration_ms,
        message
    ])
}

/// The seq range of a run's results: its key in the high 32 bits, the arrival number
/// (from 1) in the low ones.
fn seq_range(run: i64) -> (i64, i64) {
    (run << 32, (run << 32) | 0xFFFF_FFFF)
}

/// The columns of a run, in the order [`run_row`] reads them.
const RUN_COLUMNS: &str = "id, project_id, name, status, attributes, started_at, finished_at, \
     total, passed, failed, skipped, errored, flaky, rid, build_key, shards_expected, \
     shards_joined, shards_finished, finish_requested, finish_interrupted, last_finish_at, \
     quarantined";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    /// The run's integer key in this database; it never leaves the service.
    pub rid: i64,
    pub id: String,
    pub project_id: String,
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

fn conversion(err: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        err.to_string().into(),
    )
}

/// A column that holds a value's text form (a status, say), parsed without copying it.
fn parsed<T>(row: &Row<'_>, index: usize) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    row.get_ref(index)?.as_str()?.parse().map_err(conversion)
}

fn run_row(row: &Row<'_>) -> rusqlite::Result<RunRow> {
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

pub fn run(conn: &Connection, id: &str) -> rusqlite::Result<Option<RunRow>> {
    conn.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?
        .query_row([id], run_row)
        .optional()
}

/// The project's run of a CI build.
pub fn run_by_build_key(
    conn: &Connection,
    project_id: &str,
    build_key: &str,
) -> rusqlite::Result<Option<RunRow>> {
    conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE project_id = ?1 AND build_key = ?2"
    ))?
    .query_row([project_id, build_key], run_row)
    .optional()
}

// ---- shards and finishes -----------------------------------------------------------

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

/// Imports into the run (not the import that created it) still to be done.
pub fn pending_imports_into(conn: &Connection, run_id: &str) -> rusqlite::Result<u32> {
    conn.prepare_cached(
        "SELECT count(*) FROM imports WHERE run_id = ?1 AND status = 'pending' AND into_run",
    )?
    .query_row([run_id], |row| row.get(0))
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
    project_id: &str,
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
        args.extend([boxed(project_id), boxed(key), boxed(value)]);
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
        args.push(boxed(project_id));
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

fn boxed(value: &str) -> Box<dyn rusqlite::ToSql> {
    Box::new(value.to_owned())
}

fn prefixed(columns: &str, prefix: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{prefix}{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
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

// ---- results ------------------------------------------------------------------------

/// One result ready to store: checked, with its id and test key settled.
#[derive(Debug, Clone)]
pub struct ResultRow {
    pub id: String,
    pub test_key: String,
    pub suite: Option<String>,
    pub name: String,
    pub status: ResultStatus,
    pub attempt: u32,
    pub duration_ms: Option<u64>,
    pub started_at: Option<i64>,
    pub message: Option<String>,
    pub trace: Option<String>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    /// JSON object, `None` when empty.
    pub attributes: Option<String>,
}

/// Test keys the writer has found or stored, per project, with their integer keys.
/// Tests are never deleted, so an entry stays true once its transaction committed;
/// a full cache starts over.
#[derive(Debug, Default)]
pub struct KnownTests {
    by_project: HashMap<String, HashMap<String, i64>>,
    entries: usize,
}

impl KnownTests {
    /// Entries kept: about 100 bytes each.
    const MAX_ENTRIES: usize = 500_000;

    fn get(&self, project_id: &str, test_key: &str) -> Option<i64> {
        self.by_project.get(project_id)?.get(test_key).copied()
    }

    /// Keeps what a committed transaction learned.
    pub fn learn(&mut self, learned: LearnedTests) {
        for (project_id, test_key, test) in learned.0 {
            if self.entries >= Self::MAX_ENTRIES {
                self.by_project.clear();
                self.entries = 0;
            }
            let tests = self.by_project.entry(project_id).or_default();
            if tests.insert(test_key, test).is_none() {
                self.entries += 1;
            }
        }
    }
}

/// Tests a transaction looked up or stored, for [`KnownTests::learn`] once it commits;
/// dropped with a transaction that rolled back.
#[derive(Debug, Default)]
pub struct LearnedTests(Vec<(String, String, i64)>);

/// Statements applying results, prepared once per transaction, and the last seq given
/// to each run in it (the writer is the transaction's only writer, so it can count).
pub struct ResultWriter<'tx> {
    known: &'tx KnownTests,
    learned: HashMap<(String, String), i64>,
    find_test: rusqlite::CachedStatement<'tx>,
    insert_test: rusqlite::CachedStatement<'tx>,
    outcome: rusqlite::CachedStatement<'tx>,
    first_outcome: rusqlite::CachedStatement<'tx>,
    save_outcome: rusqlite::CachedStatement<'tx>,
    last_seq: rusqlite::CachedStatement<'tx>,
    insert_result: rusqlite::CachedStatement<'tx>,
    update_result: rusqlite::CachedStatement<'tx>,
    insert_text: rusqlite::CachedStatement<'tx>,
    delete_text: rusqlite::CachedStatement<'tx>,
    failures: triage::FailureStatements<'tx>,
    last_seqs: HashMap<i64, i64>,
}

impl<'tx> ResultWriter<'tx> {
    pub fn new(tx: &'tx Transaction<'_>, known: &'tx KnownTests) -> rusqlite::Result<Self> {
        Ok(Self {
            known,
            learned: HashMap::new(),
            find_test: tx
                .prepare_cached("SELECT tid FROM tests WHERE project_id = ?1 AND test_key = ?2")?,
            insert_test: tx.prepare_cached(
                "INSERT INTO tests (project_id, test_key, suite, name) VALUES (?1, ?2, ?3, ?4) RETURNING tid",
            )?,
            outcome: tx.prepare_cached(
                "SELECT attempt, status, failed_earlier FROM test_outcomes WHERE run = ?1 AND test = ?2",
            )?,
            first_outcome: tx.prepare_cached(
                "INSERT INTO test_outcomes
                   (run, test, run_started_at, attempt, status, failed_earlier, duration_ms, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (run, test) DO NOTHING",
            )?,
            save_outcome: tx.prepare_cached(
                "INSERT INTO test_outcomes
                   (run, test, run_started_at, attempt, status, failed_earlier, duration_ms, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (run, test) DO UPDATE SET
                   attempt = excluded.attempt, status = excluded.status,
                   failed_earlier = excluded.failed_earlier, duration_ms = excluded.duration_ms,
                   message = excluded.message",
            )?,
            last_seq: tx
                .prepare_cached("SELECT max(seq) FROM results WHERE seq BETWEEN ?1 AND ?2")?,
            insert_result: tx.prepare_cached(
                "INSERT INTO results (seq, run, id, test, suite, name, status, attempt, duration_ms,
                                      started_at, message, trace, stdout, stderr, attributes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT (run, id) DO NOTHING",
            )?,
            update_result: tx.prepare_cached(
                "UPDATE results SET test = ?4, suite = ?5, name = ?6, status = ?7, attempt = ?8,
                    duration_ms = ?9, started_at = ?10, message = ?11, trace = ?12, stdout = ?13,
                    stderr = ?14, attributes = ?15
                 WHERE run = ?2 AND id = ?3 RETURNING seq",
            )?,
            insert_text: tx.prepare_cached("INSERT INTO results_text (rowid, name, message) VALUES (?1, ?2, ?3)")?,
            delete_text: tx.prepare_cached("DELETE FROM results_text WHERE rowid = ?1")?,
            failures: triage::FailureStatements::new(tx)?,
            last_seqs: HashMap::new(),
        })
    }

    /// The integer key of a project's test, stored now if the test is new.
    pub fn test(
        &mut self,
        run: &RunRow,
        test_key: &str,
        suite: Option<&str>,
        name: &str,
    ) -> rusqlite::Result<i64> {
        if let Some(test) = self.known.get(&run.project_id, test_key) {
            return Ok(test);
        }
        let key = (run.project_id.clone(), test_key.to_owned());
        if let Some(&test) = self.learned.get(&key) {
            return Ok(test);
        }
        let found = self
            .find_test
            .query_row(params![run.project_id, test_key], |row| row.get(0))
            .optional()?;
        let test = match found {
            Some(test) => test,
            None => self
                .insert_test
                .query_row(params![run.project_id, test_key, suite, name], |row| {
                    row.get(0)
                })?,
        };
        self.learned.insert(key, test);
        Ok(test)
    }

    /// The tests this writer looked up or stored, to remember once the transaction
    /// commits.
    pub fn into_learned(self) -> LearnedTests {
        LearnedTests(
            self.learned
                .into_iter()
                .map(|((project_id, test_key), test)| (project_id, test_key, test))
                .collect(),
        )
    }

    /// Stores the test's first outcome in the run; false (and nothing written) when it
    /// has one already.
    pub fn first_outcome(
        &mut self,
        run: &RunRow,
        test: i64,
        outcome: &TestOutcome,
        duration_ms: Option<u64>,
        message: Option<&str>,
    ) -> rusqlite::Result<bool> {
        let stored = write_outcome(
            &mut self.first_outcome,
            run,
            test,
            outcome,
            duration_ms,
            message,
        )?;
        Ok(stored == 1)
    }

    /// The outcome a test has in the run so far.
    pub fn outcome(&mut self, run: &RunRow, test: i64) -> rusqlite::Result<Option<TestOutcome>> {
        self.outcome
            .query_row(params![run.rid, test], |row| {
                let attempt: u32 = row.get(0)?;
                Ok(TestOutcome {
                    attempt: crate::domain::Attempt::new(attempt).map_err(conversion)?,
                    status: parsed(row, 1)?,
                    failed_earlier: row.get(2)?,
                })
            })
            .optional()
    }

    /// Records the test's outcome in the run, with the duration and message of the
    /// result that settled it.
    pub fn save_outcome(
        &mut self,
        run: &RunRow,
        test: i64,
        outcome: &TestOutcome,
        duration_ms: Option<u64>,
        message: Option<&str>,
    ) -> rusqlite::Result<()> {
        write_outcome(
            &mut self.save_outcome,
            run,
            test,
            outcome,
            duration_ms,
            message,
        )?;
        Ok(())
    }

    /// Stores a result of test `test` (a resend with the same id replaces it) and
    /// indexes its text.
    pub fn upsert(&mut self, run: &RunRow, test: i64, result: &ResultRow) -> rusqlite::Result<()> {
        let (first, end) = seq_range(run.rid);
        let last = match self.last_seqs.get(&run.rid) {
            Some(&last) => last,
            None => self
                .last_seq
                .query_row([first, end], |row| row.get::<_, Option<i64>>(0))?
                .unwrap_or(first),
        };
        if last == end {
            // One more would land in the next run's range.
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                Some(format!("run {} holds as many results as it can", run.id)),
            ));
        }
        let values = params![
            last + 1,
            run.rid,
            result.id,
            test,
            result.suite,
            result.name,
            result.status.as_str(),
            result.attempt,
            result.duration_ms,
            result.started_at,
            result.message,
            result.trace,
            result.stdout,
            result.stderr,
            result.attributes
        ];
        let seq = if self.insert_result.execute(values)? == 1 {
            self.last_seqs.insert(run.rid, last + 1);
            last + 1
        } else {
            let seq: i64 = self.update_result.query_row(values, |row| row.get(0))?;
            self.delete_text.execute([seq])?;
            seq
        };
        self.insert_text
            .execute(params![seq, result.name, result.message])?;
        Ok(())
    }

    /// Records the signature of a stored result that failed, or, with `None`, that it
    /// is no failure (a resend that passed).
    pub fn record_failure(
        &mut self,
        run: &RunRow,
        test: i64,
        result: &ResultRow,
        signature: Option<&Signature>,
    ) -> rusqlite::Result<()> {
        let failure = signature.map(|signature| (signature, result.message.as_deref()));
        self.failures.record(run, test, &result.id, failure)
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
    run_id: &str,
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
pub fn stale_runs(conn: &Connection, before: i64, limit: u32) -> rusqlite::Result<Vec<String>> {
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
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, project_id FROM runs WHERE started_at < ?1 ORDER BY started_at LIMIT ?2",
    )?;
    let rows = statement.query_map(params![before, limit], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub message_id: String,
    pub subject: String,
    pub payload: Vec<u8>,
}

/// Adds a message to the outbox, in the transaction of the change it tells of.
pub fn enqueue(
    tx: &Transaction<'_>,
    message_id: &str,
    subject: &str,
    payload: &[u8],
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO outbox (message_id, subject, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![message_id, subject, payload, now])?;
    Ok(())
}

/// The oldest messages of the outbox, in the order they were written.
pub fn outbox(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<OutboxRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, message_id, subject, payload FROM outbox ORDER BY id LIMIT ?1",
    )?;
    let rows = statement.query_map([limit], |row| {
        Ok(OutboxRow {
            id: row.get(0)?,
            message_id: row.get(1)?,
            subject: row.get(2)?,
            payload: row.get(3)?,
        })
    })?;
    rows.collect()
}

/// Removes a relayed message from the outbox.
pub fn relayed(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM outbox WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Removes a run with its results, outcomes, attributes and text index entries.
pub fn delete_run(tx: &Transaction<'_>, run_id: &str) -> rusqlite::Result<bool> {
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

/// Removes a run's results, outcomes and text index entries (not its counters).
fn delete_results(tx: &Transaction<'_>, rid: i64) -> rusqlite::Result<()> {
    let (first, last) = seq_range(rid);
    tx.execute(
        "DELETE FROM results_text WHERE rowid BETWEEN ?1 AND ?2",
        [first, last],
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

/// How a run's results are filtered.
#[derive(Debug, Clone, Default)]
pub struct ResultFilter {
    pub status: Option<ResultStatus>,
    pub suite: Option<String>,
    /// An FTS5 query (already escaped) over name and message.
    pub text: Option<String>,
    /// `seq` of the last result of the previous page; 0 on the first page.
    pub after: i64,
    /// Newest first: the page continues below `after` instead of above it.
    pub newest_first: bool,
}

/// A stored result with its position in the run.
#[derive(Debug, Clone)]
pub struct StoredResult {
    pub seq: i64,
    pub row: ResultRow,
}

/// The columns of a result (`r`) and its test (`t`), in the order [`result_row`] reads them.
const RESULT_COLUMNS: &str =
    "r.seq, r.id, t.test_key, r.suite, r.name, r.status, r.attempt, r.duration_ms, \
     r.started_at, r.message, r.trace, r.stdout, r.stderr, r.attributes";

fn result_row(row: &Row<'_>) -> rusqlite::Result<StoredResult> {
    Ok(StoredResult {
        seq: row.get(0)?,
        row: ResultRow {
            id: row.get(1)?,
            test_key: row.get(2)?,
            suite: row.get(3)?,
            name: row.get(4)?,
            status: parsed(row, 5)?,
            attempt: row.get(6)?,
            duration_ms: row.get(7)?,
            started_at: row.get(8)?,
            message: row.get(9)?,
            trace: row.get(10)?,
            stdout: row.get(11)?,
            stderr: row.get(12)?,
            attributes: row.get(13)?,
        },
    })
}

/// A run's results in the order they arrived: a range of the results table, or of the
/// status or suite index (whose implicit seq bounds the run).
pub fn list_results(
    conn: &Connection,
    rid: i64,
    filter: &ResultFilter,
    limit: u32,
) -> rusqlite::Result<Vec<StoredResult>> {
    let (mut first, mut last) = seq_range(rid);
    match (filter.newest_first, filter.after) {
        (_, 0) => {}
        (true, after) => last = last.min(after.saturating_sub(1)),
        (false, after) => first = first.max(after.saturating_add(1)),
    }
    let mut sql = format!(
        "SELECT {RESULT_COLUMNS} FROM results r JOIN tests t ON t.tid = r.test
         WHERE r.seq BETWEEN ? AND ?"
    );
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(first), Box::new(last)];
    if let Some(status) = filter.status {
        sql.push_str(" AND r.status = ?");
        args.push(boxed(status.as_str()));
    }
    if let Some(suite) = &filter.suite {
        sql.push_str(" AND r.suite = ?");
        args.push(boxed(suite));
    }
    if let Some(text) = &filter.text {
        // The text index spans every run; bounding it by this run's seq range lets FTS5
        // seek to the run instead of listing every match in the store.
        sql.push_str(
            " AND r.seq IN (SELECT rowid FROM results_text WHERE results_text MATCH ? AND rowid BETWEEN ? AND ?)",
        );
        args.push(boxed(text));
        args.push(Box::new(first));
        args.push(Box::new(last));
    }
    sql.push_str(if filter.newest_first {
        " ORDER BY r.seq DESC LIMIT ?"
    } else {
        " ORDER BY r.seq LIMIT ?"
    });
    args.push(Box::new(limit));
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(args.iter()), result_row)?;
    rows.collect()
}

/// One run of a test's history.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    /// The run's integer key, for the page cursor.
    pub rid: i64,
    pub run_id: String,
    pub run_name: String,
    pub status: ResultStatus,
    pub duration_ms: Option<u64>,
    pub started_at: i64,
    pub attributes: BTreeMap<String, String>,
    pub message: Option<String>,
}

/// A test's outcome in each run of the project, newest first. `after` is
/// `(started_at, rid)` of the last row of the previous page.
pub fn test_history(
    conn: &Connection,
    project_id: &str,
    test_key: &str,
    after: Option<(i64, i64)>,
    limit: u32,
) -> rusqlite::Result<Vec<HistoryRow>> {
    let (after_started, after_rid) = after.unwrap_or((i64::MAX, i64::MAX));
    let mut statement = conn.prepare_cached(
        "SELECT o.run, r.id, r.name, o.status, o.duration_ms, o.run_started_at, r.attributes,
                o.message
         FROM tests t JOIN test_outcomes o ON o.test = t.tid JOIN runs r ON r.rid = o.run
         WHERE t.project_id = ?1 AND t.test_key = ?2 AND (o.run_started_at, o.run) < (?3, ?4)
         ORDER BY o.run_started_at DESC, o.run DESC LIMIT ?5",
    )?;
    let rows = statement.query_map(
        params![project_id, test_key, after_started, after_rid, limit],
        |row| {
            let attributes: String = row.get(6)?;
            Ok(HistoryRow {
                rid: row.get(0)?,
                run_id: row.get(1)?,
                run_name: row.get(2)?,
                status: parsed(row, 3)?,
                duration_ms: row.get(4)?,
                started_at: row.get(5)?,
                attributes: serde_json::from_str(&attributes).map_err(conversion)?,
                message: row.get(7)?,
            })
        },
    )?;
    rows.collect()
}

/// One test's final outcome in one run.
#[derive(Debug, Clone)]
pub struct OutcomeRow {
    /// The test's integer key.
    pub test: i64,
    pub status: ResultStatus,
    pub failed_earlier: bool,
}

pub fn outcomes_of_run(conn: &Connection, rid: i64) -> rusqlite::Result<Vec<OutcomeRow>> {
    let mut statement = conn
        .prepare_cached("SELECT test, status, failed_earlier FROM test_outcomes WHERE run = ?1")?;
    let rows = statement.query_map([rid], |row| {
        Ok(OutcomeRow {
            test: row.get(0)?,
            status: parsed(row, 1)?,
            failed_earlier: row.get(2)?,
        })
    })?;
    rows.collect()
}

// ---- imports ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct ImportRow {
    pub id: String,
    pub run_id: String,
    pub project_id: String,
    /// `junit` or `ctrf`.
    pub format: String,
    /// `pending`, `done` or `failed`.
    pub status: String,
    pub error: Option<String>,
    /// JSON of the counts, once done.
    pub counts: Option<String>,
    /// JSON array of what the import noticed without refusing the report.
    pub warnings: Option<String>,
    pub artifact_id: Option<String>,
    /// Attempts made so far.
    pub attempts: u32,
    /// When a queued import is to be tried (again).
    pub next_attempt_at: Option<i64>,
    /// Into an existing run (whose other results stay), rather than into a run of its own.
    pub into_run: bool,
}

const IMPORT_COLUMNS: &str = "id, run_id, project_id, format, status, error, counts, \
     artifact_id, attempts, next_attempt_at, warnings, into_run";

fn import_row(row: &Row<'_>) -> rusqlite::Result<ImportRow> {
    Ok(ImportRow {
        id: row.get(0)?,
        run_id: row.get(1)?,
        project_id: row.get(2)?,
        format: row.get(3)?,
        status: row.get(4)?,
        error: row.get(5)?,
        counts: row.get(6)?,
        artifact_id: row.get(7)?,
        attempts: row.get(8)?,
        next_attempt_at: row.get(9)?,
        warnings: row.get(10)?,
        into_run: row.get(11)?,
    })
}

pub fn insert_import(conn: &Connection, import: &ImportRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO imports (id, run_id, project_id, format, status, into_run)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
        params![
            import.id,
            import.run_id,
            import.project_id,
            import.format,
            import.into_run
        ],
    )?;
    Ok(())
}

pub fn import(conn: &Connection, id: &str) -> rusqlite::Result<Option<ImportRow>> {
    conn.prepare_cached(&format!(
        "SELECT {IMPORT_COLUMNS} FROM imports WHERE id = ?1"
    ))?
    .query_row([id], import_row)
    .optional()
}

/// Queues a pending import, due at once: its report is stored as `artifact_id`.
pub fn queue_import(
    conn: &Connection,
    id: &str,
    artifact_id: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE imports SET artifact_id = ?2, queued_at = ?3, next_attempt_at = ?3
         WHERE id = ?1 AND status = 'pending' AND artifact_id IS NULL",
        params![id, artifact_id, now],
    )? == 1)
}

/// The queued import due first (possibly not yet due).
pub fn next_queued_import(conn: &Connection) -> rusqlite::Result<Option<ImportRow>> {
    conn.prepare_cached(&format!(
        "SELECT {IMPORT_COLUMNS} FROM imports
         WHERE status = 'pending' AND artifact_id IS NOT NULL ORDER BY next_attempt_at LIMIT 1"
    ))?
    .query_row([], import_row)
    .optional()
}

/// Counts an attempt of a pending import and schedules the next one, should this one
/// not end it; `false` when the import is no longer pending.
pub fn begin_import_attempt(conn: &Connection, id: &str, retry_at: i64) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE imports SET attempts = attempts + 1, next_attempt_at = ?2
         WHERE id = ?1 AND status = 'pending'",
        params![id, retry_at],
    )? == 1)
}

pub fn end_import(
    conn: &Connection,
    id: &str,
    status: &str,
    error: Option<&str>,
    counts: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE imports SET status = ?2, error = ?3, counts = ?4 WHERE id = ?1",
        params![id, status, error, counts],
    )?;
    Ok(())
}

/// Keeps what an import noticed in its report without refusing it.
pub fn set_import_warnings(conn: &Connection, id: &str, warnings: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE imports SET warnings = ?2 WHERE id = ?1",
        params![id, warnings],
    )?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A database at the latest version, as the service's store tests use it.
    pub(crate) fn conn() -> Connection {
        MIGRATIONS.in_memory().unwrap()
    }

    /// The query plan of `sql` in that database.
    pub(crate) fn plan(conn: &Connection, sql: &str) -> String {
        verdict_store::query_plan(conn, sql).unwrap()
    }

    fn assert_index_scan(sql: &str, index: &str) {
        let plan = plan(&conn(), sql);
        assert!(plan.contains(index), "expected {index}:\n{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "sorts in memory:\n{plan}");
        assert!(
            !plan.contains("SCAN r\n") && !plan.starts_with("SCAN runs"),
            "full scan:\n{plan}"
        );
    }

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
    fn a_runs_results_come_in_arrival_order_from_its_range_of_the_table() {
        let plan = plan(
            &conn(),
            &format!(
                "SELECT {RESULT_COLUMNS} FROM results r JOIN tests t ON t.tid = r.test
                 WHERE r.seq BETWEEN ? AND ? ORDER BY r.seq LIMIT ?"
            ),
        );
        assert!(
            plan.starts_with("SEARCH r USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "sorts in memory:\n{plan}");
    }

    #[test]
    fn a_runs_results_by_status_or_suite_come_from_their_index_bounded_by_the_run_in_either_order()
    {
        for (filter, index) in [
            (
                "r.status = ?",
                "results_by_status (status=? AND rowid>? AND rowid<?)",
            ),
            (
                "r.suite = ?",
                "results_by_suite (suite=? AND rowid>? AND rowid<?)",
            ),
        ] {
            for order in ["r.seq", "r.seq DESC"] {
                assert_index_scan(
                    &format!(
                        "SELECT {RESULT_COLUMNS} FROM results r JOIN tests t ON t.tid = r.test
                         WHERE r.seq BETWEEN ? AND ? AND {filter} ORDER BY {order} LIMIT ?"
                    ),
                    index,
                );
            }
        }
    }

    #[test]
    fn a_text_search_uses_the_full_text_index() {
        let plan = plan(
            &conn(),
            &format!(
                "SELECT {RESULT_COLUMNS} FROM results r JOIN tests t ON t.tid = r.test
                 WHERE r.seq BETWEEN ? AND ?
                 AND r.seq IN (SELECT rowid FROM results_text WHERE results_text MATCH ? AND rowid BETWEEN ? AND ?)
                 ORDER BY r.seq LIMIT ?"
            ),
        );
        assert!(plan.contains("VIRTUAL TABLE INDEX"), "{plan}");
    }

    #[test]
    fn a_runs_last_result_comes_from_its_range_of_the_table() {
        let plan = plan(
            &conn(),
            "SELECT max(seq) FROM results WHERE seq BETWEEN ? AND ?",
        );
        assert!(
            plan.contains("USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
            "{plan}"
        );
    }

    #[test]
    fn a_tests_history_comes_from_the_history_index() {
        assert_index_scan(
            "SELECT o.run, r.name FROM tests t JOIN test_outcomes o ON o.test = t.tid
             JOIN runs r ON r.rid = o.run
             WHERE t.project_id = ? AND t.test_key = ? AND (o.run_started_at, o.run) < (?, ?)
             ORDER BY o.run_started_at DESC, o.run DESC LIMIT ?",
            "test_history",
        );
    }

    #[test]
    fn the_import_queue_is_read_from_its_index() {
        assert_index_scan(
            &format!("SELECT {IMPORT_COLUMNS} FROM imports WHERE status = 'pending' AND artifact_id IS NOT NULL ORDER BY next_attempt_at LIMIT 1"),
            "imports_due",
        );
    }

    fn result(id: &str, name: &str, status: ResultStatus, message: Option<&str>) -> ResultRow {
        ResultRow {
            id: id.into(),
            test_key: format!("key of {name}"),
            suite: None,
            name: name.into(),
            status,
            attempt: 1,
            duration_ms: None,
            started_at: None,
            message: message.map(Into::into),
            trace: None,
            stdout: None,
            stderr: None,
            attributes: None,
        }
    }

    fn store_results(conn: &mut Connection, run: &RunRow, results: &[ResultRow]) {
        let tx = conn.transaction().unwrap();
        {
            let known = KnownTests::default();
            let mut writer = ResultWriter::new(&tx, &known).unwrap();
            for result in results {
                let test = writer
                    .test(run, &result.test_key, None, &result.name)
                    .unwrap();
                writer.upsert(run, test, result).unwrap();
            }
        }
        tx.commit().unwrap();
    }

    fn ids(conn: &Connection, rid: i64, filter: &ResultFilter) -> Vec<String> {
        list_results(conn, rid, filter, 100)
            .unwrap()
            .into_iter()
            .map(|stored| stored.row.id)
            .collect()
    }

    fn text(words: &str) -> ResultFilter {
        ResultFilter {
            text: Some(format!("\"{words}\"*")),
            ..ResultFilter::default()
        }
    }

    fn new_run(conn: &mut Connection, id: &str) -> RunRow {
        run_started_at(conn, id, 1)
    }

    fn run_started_at(conn: &mut Connection, id: &str, started_at: i64) -> RunRow {
        let mut run = RunRow {
            rid: 0,
            id: id.into(),
            project_id: "project".into(),
            name: "nightly".into(),
            status: RunStatus::Running,
            attributes: BTreeMap::new(),
            started_at,
            finished_at: None,
            counts: Counts::default(),
            build_key: None,
            finishing: Finishing::default(),
        };
        let tx = conn.transaction().unwrap();
        insert_run(&tx, &mut run).unwrap();
        tx.commit().unwrap();
        run
    }

    #[test]
    fn paging_through_a_tests_history_returns_each_run_once_newest_first() {
        let mut conn = conn();
        let runs = [
            run_started_at(&mut conn, "old", 10),
            run_started_at(&mut conn, "tied-first", 20),
            run_started_at(&mut conn, "tied-second", 20),
            run_started_at(&mut conn, "new", 30),
        ];
        let tx = conn.transaction().unwrap();
        {
            let known = KnownTests::default();
            let mut writer = ResultWriter::new(&tx, &known).unwrap();
            for run in &runs {
                let test = writer.test(run, "k", None, "a").unwrap();
                let outcome = TestOutcome {
                    attempt: crate::domain::Attempt::new(1).unwrap(),
                    status: ResultStatus::Passed,
                    failed_earlier: false,
                };
                writer
                    .save_outcome(run, test, &outcome, None, None)
                    .unwrap();
            }
        }
        tx.commit().unwrap();

        let mut seen = Vec::new();
        let mut after = None;
        while let Some(row) = test_history(&conn, "project", "k", after, 1).unwrap().pop() {
            after = Some((row.started_at, row.rid));
            seen.push(row.run_id);
        }
        assert_eq!(seen, ["new", "tied-second", "tied-first", "old"]);
    }

    #[test]
    fn a_run_whose_seq_range_is_used_up_refuses_more_results_rather_than_spill_over() {
        let mut conn = conn();
        let full = new_run(&mut conn, "full");
        let next = new_run(&mut conn, "next");
        let test = conn
            .query_row(
                "INSERT INTO tests (project_id, test_key, name) VALUES ('project', 'k', 'a') RETURNING tid",
                [],
                |row| row.get::<_, i64>(0),
            )
            .unwrap();
        conn.execute(
            "INSERT INTO results (seq, run, id, test, name, status, attempt) VALUES (?1, ?2, 'last', ?3, 'a', 'passed', 1)",
            params![seq_range(full.rid).1, full.rid, test],
        )
        .unwrap();

        let tx = conn.transaction().unwrap();
        let known = KnownTests::default();
        let mut writer = ResultWriter::new(&tx, &known).unwrap();
        let refused = writer.upsert(
            &full,
            test,
            &result("more", "a", ResultStatus::Passed, None),
        );
        assert!(refused
            .unwrap_err()
            .to_string()
            .contains("run full holds as many results"));
        drop(writer);
        assert!(ids(&tx, next.rid, &ResultFilter::default()).is_empty());
    }

    #[test]
    fn newest_first_pages_go_back_from_the_latest_result_of_the_run() {
        let mut conn = conn();
        let run = new_run(&mut conn, "run");
        let other = new_run(&mut conn, "other");
        let results: Vec<ResultRow> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|id| result(id, id, ResultStatus::Failed, None))
            .collect();
        store_results(&mut conn, &run, &results);
        store_results(
            &mut conn,
            &other,
            &[result("z", "z", ResultStatus::Failed, None)],
        );
        let newest_first = |after| ResultFilter {
            status: Some(ResultStatus::Failed),
            after,
            newest_first: true,
            ..ResultFilter::default()
        };

        let first_page = list_results(&conn, run.rid, &newest_first(0), 2).unwrap();
        let first_ids: Vec<_> = first_page.iter().map(|s| s.row.id.as_str()).collect();
        assert_eq!(first_ids, ["e", "d"]);
        let next = list_results(&conn, run.rid, &newest_first(first_page[1].seq), 2).unwrap();
        let next_ids: Vec<_> = next.iter().map(|s| s.row.id.as_str()).collect();
        assert_eq!(next_ids, ["c", "b"]);
        assert_eq!(
            ids(&conn, run.rid, &newest_first(0)),
            ["e", "d", "c", "b", "a"]
        );
    }

    #[test]
    fn a_resent_result_replaces_the_stored_one_in_its_place_and_in_the_text_index() {
        let mut conn = conn();
        let run = new_run(&mut conn, "run");
        store_results(
            &mut conn,
            &run,
            &[
                result("x", "a", ResultStatus::Failed, Some("timeout")),
                result("y", "b", ResultStatus::Passed, None),
            ],
        );
        store_results(
            &mut conn,
            &run,
            &[result("x", "a", ResultStatus::Passed, Some("recovered"))],
        );

        let stored = list_results(&conn, run.rid, &ResultFilter::default(), 100).unwrap();
        let rows: Vec<_> = stored
            .iter()
            .map(|s| (s.row.id.as_str(), s.row.status))
            .collect();
        assert_eq!(
            rows,
            [("x", ResultStatus::Passed), ("y", ResultStatus::Passed)]
        );
        assert_eq!(stored[0].row.test_key, "key of a");
        assert!(ids(&conn, run.rid, &text("timeout")).is_empty());
        assert_eq!(ids(&conn, run.rid, &text("recovered")), ["x"]);
    }

    #[test]
    fn a_database_with_text_keys_migrates_keeping_runs_results_history_and_text() {
        let mut conn = Connection::open_in_memory().unwrap();
        // As the service opens it: dropping a parent table must not cascade anywhere.
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        Migrations(&MIGRATIONS.0[..2]).apply(&mut conn).unwrap();
        conn.execute_batch(
            r#"
            INSERT INTO runs (id, project_id, name, status, attributes, started_at, last_activity,
                              total, passed, failed)
            VALUES ('run-b', 'p', 'second', 'failed', '{"os":"linux"}', 2000, 2000, 2, 1, 1),
                   ('run-a', 'p', 'first', 'passed', '{}', 1000, 1000, 1, 1, 0);
            INSERT INTO run_attributes VALUES ('run-b', 'os', 'linux', 'p', 2000);
            INSERT INTO tests VALUES ('p', 'k1', 's', 'one'), ('p', 'k2', 's', 'two');
            INSERT INTO test_outcomes VALUES ('run-a', 'k1', 'p', 1000, 1, 'passed', 0, 5),
                ('run-b', 'k1', 'p', 2000, 1, 'failed', 0, 6),
                ('run-b', 'k2', 'p', 2000, 1, 'passed', 0, 7);
            INSERT INTO results (seq, run_id, id, test_key, suite, name, status, attempt, message)
            VALUES (1, 'run-a', 'x', 'k1', 's', 'one', 'passed', 1, NULL),
                   (2, 'run-b', 'y', 'k2', 's', 'two', 'passed', 1, NULL),
                   (3, 'run-b', 'z', 'k1', 's', 'one', 'failed', 1, 'boom: timeout');
            INSERT INTO results_text (rowid, name, message)
            VALUES (1, 'one', NULL), (2, 'two', NULL), (3, 'one', 'boom: timeout');
            "#,
        )
        .unwrap();
        MIGRATIONS.apply(&mut conn).unwrap();

        let b = run(&conn, "run-b").unwrap().unwrap();
        assert_eq!((b.counts.total, b.counts.failed), (2, 1));
        assert_eq!(ids(&conn, b.rid, &ResultFilter::default()), ["y", "z"]);
        let failed = ResultFilter {
            status: Some(ResultStatus::Failed),
            ..ResultFilter::default()
        };
        assert_eq!(ids(&conn, b.rid, &failed), ["z"]);
        assert_eq!(ids(&conn, b.rid, &text("timeout")), ["z"]);
        let history: Vec<_> = test_history(&conn, "p", "k1", None, 10)
            .unwrap()
            .into_iter()
            .map(|row| row.run_id)
            .collect();
        assert_eq!(history, ["run-b", "run-a"]);
        let linux = RunFilter {
            attributes: [("os".to_owned(), "linux".to_owned())].into(),
            ..RunFilter::default()
        };
        let runs: Vec<_> = list_runs(&conn, "p", &linux, 10)
            .unwrap()
            .into_iter()
            .map(|run| run.id)
            .collect();
        assert_eq!(runs, ["run-b"]);

        store_results(
            &mut conn,
            &b,
            &[result("w", "three", ResultStatus::Passed, None)],
        );
        assert_eq!(ids(&conn, b.rid, &ResultFilter::default()), ["y", "z", "w"]);
        let tx = conn.transaction().unwrap();
        assert!(delete_run(&tx, "run-b").unwrap());
        assert!(ids(&tx, b.rid, &ResultFilter::default()).is_empty());
        assert!(ids(&tx, b.rid, &text("timeout")).is_empty());
    }

    #[test]
    fn an_import_queued_before_retries_existed_is_due_when_it_was_queued() {
        let mut conn = Connection::open_in_memory().unwrap();
        Migrations(&MIGRATIONS.0[..3]).apply(&mut conn).unwrap();
        conn.execute_batch(
            r#"INSERT INTO imports (id, run_id, project_id, format, status, artifact_id, principal, queued_at)
               VALUES ('i', 'r', 'p', 'junit', 'pending', 'a', '{"type":"user"}', 1234)"#,
        )
        .unwrap();
        MIGRATIONS.apply(&mut conn).unwrap();

        let queued = next_queued_import(&conn).unwrap().unwrap();
        assert_eq!(
            (queued.id.as_str(), queued.attempts, queued.next_attempt_at),
            ("i", 0, Some(1234))
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
    fn pending_imports_into_a_run_are_counted_from_the_run_index() {
        assert_index_scan(
            "SELECT count(*) FROM imports WHERE run_id = ?1 AND status = 'pending' AND into_run",
            "imports_by_run",
        );
    }

    #[test]
    fn shards_are_counted_as_they_join_finish_and_join_again() {
        let mut conn = conn();
        let run = new_run(&mut conn, "build");
        let tx = conn.transaction().unwrap();
        let counts = |tx: &Transaction<'_>| {
            let f = run_of(tx, "build").finishing;
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

    fn run_of(conn: &Connection, id: &str) -> RunRow {
        run(conn, id).unwrap().unwrap()
    }

    #[test]
    fn stale_runs_come_from_the_running_index() {
        assert_index_scan(
            "SELECT id FROM runs WHERE status = 'running' AND last_activity < ? ORDER BY last_activity LIMIT ?",
            "runs_running",
        );
    }
}
