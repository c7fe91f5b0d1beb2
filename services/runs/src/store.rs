//! All SQL of the runs service. Functions take a connection so callers choose the
//! transaction. Times are Unix milliseconds; the wire form is made in `convert.rs`.

use std::collections::BTreeMap;

use verdict_store::rusqlite::{self, params, Connection, OptionalExtension, Row, Transaction};
use verdict_store::Migrations;

use crate::domain::{Counts, CountsDelta, ResultStatus, RunStatus, TestOutcome};

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
]);

/// The columns of a run, in the order [`run_row`] reads them.
const RUN_COLUMNS: &str = "id, project_id, name, status, attributes, started_at, finished_at, \
     total, passed, failed, skipped, errored, flaky";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub status: RunStatus,
    pub attributes: BTreeMap<String, String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub counts: Counts,
}

fn conversion(err: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        err.to_string().into(),
    )
}

fn run_row(row: &Row<'_>) -> rusqlite::Result<RunRow> {
    let status: String = row.get(3)?;
    let attributes: String = row.get(4)?;
    Ok(RunRow {
        id: row.get(0)?,
        project_id: row.get(1)?,
        name: row.get(2)?,
        status: status.parse().map_err(conversion)?,
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
        },
    })
}

pub fn insert_run(tx: &Transaction<'_>, run: &RunRow) -> rusqlite::Result<()> {
    let attributes = serde_json::to_string(&run.attributes).map_err(conversion)?;
    tx.execute(
        "INSERT INTO runs (id, project_id, name, status, attributes, started_at, last_activity)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![
            run.id,
            run.project_id,
            run.name,
            run.status.as_str(),
            attributes,
            run.started_at
        ],
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

/// Statements applying a batch of results, prepared once per transaction.
pub struct ResultWriter<'tx> {
    insert_test: rusqlite::CachedStatement<'tx>,
    outcome: rusqlite::CachedStatement<'tx>,
    save_outcome: rusqlite::CachedStatement<'tx>,
    insert_result: rusqlite::CachedStatement<'tx>,
    update_result: rusqlite::CachedStatement<'tx>,
    insert_text: rusqlite::CachedStatement<'tx>,
    delete_text: rusqlite::CachedStatement<'tx>,
}

impl<'tx> ResultWriter<'tx> {
    pub fn new(tx: &'tx Transaction<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            insert_test: tx.prepare_cached(
                "INSERT INTO tests (project_id, test_key, suite, name) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
            )?,
            outcome: tx.prepare_cached(
                "SELECT attempt, status, failed_earlier FROM test_outcomes WHERE run_id = ?1 AND test_key = ?2",
            )?,
            save_outcome: tx.prepare_cached(
                "INSERT INTO test_outcomes
                   (run_id, test_key, project_id, run_started_at, attempt, status, failed_earlier, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (run_id, test_key) DO UPDATE SET
                   attempt = excluded.attempt, status = excluded.status,
                   failed_earlier = excluded.failed_earlier, duration_ms = excluded.duration_ms",
            )?,
            insert_result: tx.prepare_cached(
                "INSERT INTO results (run_id, id, test_key, suite, name, status, attempt, duration_ms,
                                      started_at, message, trace, stdout, stderr, attributes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT (run_id, id) DO NOTHING RETURNING seq",
            )?,
            update_result: tx.prepare_cached(
                "UPDATE results SET test_key = ?3, suite = ?4, name = ?5, status = ?6, attempt = ?7,
                    duration_ms = ?8, started_at = ?9, message = ?10, trace = ?11, stdout = ?12,
                    stderr = ?13, attributes = ?14
                 WHERE run_id = ?1 AND id = ?2 RETURNING seq",
            )?,
            insert_text: tx.prepare_cached("INSERT INTO results_text (rowid, name, message) VALUES (?1, ?2, ?3)")?,
            delete_text: tx.prepare_cached("DELETE FROM results_text WHERE rowid = ?1")?,
        })
    }

    /// The outcome a test has in the run so far.
    pub fn outcome(
        &mut self,
        run_id: &str,
        test_key: &str,
    ) -> rusqlite::Result<Option<TestOutcome>> {
        self.outcome
            .query_row(params![run_id, test_key], |row| {
                let status: String = row.get(1)?;
                let attempt: u32 = row.get(0)?;
                Ok(TestOutcome {
                    attempt: crate::domain::Attempt::new(attempt).map_err(conversion)?,
                    status: status.parse().map_err(conversion)?,
                    failed_earlier: row.get(2)?,
                })
            })
            .optional()
    }

    pub fn save_outcome(
        &mut self,
        run: &RunRow,
        test_key: &str,
        outcome: &TestOutcome,
        duration_ms: Option<u64>,
    ) -> rusqlite::Result<()> {
        self.save_outcome.execute(params![
            run.id,
            test_key,
            run.project_id,
            run.started_at,
            outcome.attempt.get(),
            outcome.status.as_str(),
            outcome.failed_earlier,
            duration_ms
        ])?;
        Ok(())
    }

    /// Stores a result (a resend with the same id replaces it) and indexes its text.
    pub fn upsert(&mut self, run: &RunRow, result: &ResultRow) -> rusqlite::Result<()> {
        self.insert_test.execute(params![
            run.project_id,
            result.test_key,
            result.suite,
            result.name
        ])?;
        let values = params![
            run.id,
            result.id,
            result.test_key,
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
        let inserted: Option<i64> = self
            .insert_result
            .query_row(values, |row| row.get(0))
            .optional()?;
        let seq = match inserted {
            Some(seq) => seq,
            None => {
                let seq: i64 = self.update_result.query_row(values, |row| row.get(0))?;
                self.delete_text.execute([seq])?;
                seq
            }
        };
        self.insert_text
            .execute(params![seq, result.name, result.message])?;
        Ok(())
    }
}

/// Adds the batch's counter changes to the run and marks it active.
pub fn add_counts(
    tx: &Transaction<'_>,
    run_id: &str,
    delta: &CountsDelta,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE runs SET total = total + ?2, passed = passed + ?3, failed = failed + ?4,
            skipped = skipped + ?5, errored = errored + ?6, flaky = flaky + ?7, last_activity = ?8
         WHERE id = ?1",
    )?
    .execute(params![
        run_id,
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

pub fn finish_run(
    tx: &Transaction<'_>,
    run_id: &str,
    status: RunStatus,
    finished_at: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE runs SET status = ?2, finished_at = ?3, last_activity = ?3 WHERE id = ?1",
        params![run_id, status.as_str(), finished_at],
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

/// Removes a run with its results, outcomes, attributes and text index entries.
pub fn delete_run(tx: &Transaction<'_>, run_id: &str) -> rusqlite::Result<bool> {
    tx.execute(
        "DELETE FROM results_text WHERE rowid IN (SELECT seq FROM results WHERE run_id = ?1)",
        [run_id],
    )?;
    tx.execute("DELETE FROM results WHERE run_id = ?1", [run_id])?;
    tx.execute("DELETE FROM test_outcomes WHERE run_id = ?1", [run_id])?;
    tx.execute("DELETE FROM run_attributes WHERE run_id = ?1", [run_id])?;
    tx.execute("DELETE FROM imports WHERE run_id = ?1", [run_id])?;
    Ok(tx.execute("DELETE FROM runs WHERE id = ?1", [run_id])? == 1)
}

/// How a run's results are filtered.
#[derive(Debug, Clone, Default)]
pub struct ResultFilter {
    pub status: Option<ResultStatus>,
    pub suite: Option<String>,
    /// An FTS5 query (already escaped) over name and message.
    pub text: Option<String>,
    /// `seq` of the last result of the previous page.
    pub after: i64,
}

/// A stored result with its position in the run.
#[derive(Debug, Clone)]
pub struct StoredResult {
    pub seq: i64,
    pub row: ResultRow,
}

const RESULT_COLUMNS: &str =
    "seq, id, test_key, suite, name, status, attempt, duration_ms, started_at, \
     message, trace, stdout, stderr, attributes";

fn result_row(row: &Row<'_>) -> rusqlite::Result<StoredResult> {
    let status: String = row.get(5)?;
    Ok(StoredResult {
        seq: row.get(0)?,
        row: ResultRow {
            id: row.get(1)?,
            test_key: row.get(2)?,
            suite: row.get(3)?,
            name: row.get(4)?,
            status: status.parse().map_err(conversion)?,
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

/// A run's results in the order they arrived.
pub fn list_results(
    conn: &Connection,
    run_id: &str,
    filter: &ResultFilter,
    limit: u32,
) -> rusqlite::Result<Vec<StoredResult>> {
    let mut sql = format!("SELECT {RESULT_COLUMNS} FROM results WHERE run_id = ?");
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![boxed(run_id)];
    if let Some(status) = filter.status {
        sql.push_str(" AND status = ?");
        args.push(boxed(status.as_str()));
    }
    if let Some(suite) = &filter.suite {
        sql.push_str(" AND suite = ?");
        args.push(boxed(suite));
    }
    if let Some(text) = &filter.text {
        // The text index spans every run; bounding it by this run's first and last
        // result lets FTS5 seek to the run instead of listing every match in the store.
        let (first, last): (Option<i64>, Option<i64>) = conn
            .prepare_cached("SELECT min(seq), max(seq) FROM results WHERE run_id = ?1")?
            .query_row([run_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(Vec::new());
        };
        sql.push_str(
            " AND seq IN (SELECT rowid FROM results_text WHERE results_text MATCH ? AND rowid BETWEEN ? AND ?)",
        );
        args.push(boxed(text));
        args.push(Box::new(first.max(filter.after + 1)));
        args.push(Box::new(last));
    }
    sql.push_str(" AND seq > ? ORDER BY seq LIMIT ?");
    args.push(Box::new(filter.after));
    args.push(Box::new(limit));
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(args.iter()), result_row)?;
    rows.collect()
}

/// One run of a test's history.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub run_id: String,
    pub run_name: String,
    pub status: ResultStatus,
    pub duration_ms: Option<u64>,
    pub started_at: i64,
    pub attributes: BTreeMap<String, String>,
}

/// A test's outcome in each run of the project, newest first.
pub fn test_history(
    conn: &Connection,
    project_id: &str,
    test_key: &str,
    after: Option<(i64, String)>,
    limit: u32,
) -> rusqlite::Result<Vec<HistoryRow>> {
    let (after_started, after_id) = after.unwrap_or((i64::MAX, String::new()));
    let mut statement = conn.prepare_cached(
        "SELECT o.run_id, r.name, o.status, o.duration_ms, o.run_started_at, r.attributes
         FROM test_outcomes o JOIN runs r ON r.id = o.run_id
         WHERE o.project_id = ?1 AND o.test_key = ?2 AND (o.run_started_at, o.run_id) < (?3, ?4)
         ORDER BY o.run_started_at DESC, o.run_id DESC LIMIT ?5",
    )?;
    let after_id = if after_started == i64::MAX {
        "\u{10FFFF}".to_owned()
    } else {
        after_id
    };
    let rows = statement.query_map(
        params![project_id, test_key, after_started, after_id, limit],
        |row| {
            let status: String = row.get(2)?;
            let attributes: String = row.get(5)?;
            Ok(HistoryRow {
                run_id: row.get(0)?,
                run_name: row.get(1)?,
                status: status.parse().map_err(conversion)?,
                duration_ms: row.get(3)?,
                started_at: row.get(4)?,
                attributes: serde_json::from_str(&attributes).map_err(conversion)?,
            })
        },
    )?;
    rows.collect()
}

/// The latest finished runs of a project, newest first: `(id, started_at)`.
pub fn latest_finished_runs(
    conn: &Connection,
    project_id: &str,
    window: u32,
) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, started_at FROM runs INDEXED BY runs_by_project
         WHERE project_id = ?1 AND finished_at IS NOT NULL
         ORDER BY started_at DESC, id DESC LIMIT ?2",
    )?;
    let rows = statement.query_map(params![project_id, window], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })?;
    rows.collect()
}

/// One test's final outcome in one run.
#[derive(Debug, Clone)]
pub struct OutcomeRow {
    pub test_key: String,
    pub status: ResultStatus,
    pub failed_earlier: bool,
}

pub fn outcomes_of_run(conn: &Connection, run_id: &str) -> rusqlite::Result<Vec<OutcomeRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT test_key, status, failed_earlier FROM test_outcomes WHERE run_id = ?1",
    )?;
    let rows = statement.query_map([run_id], |row| {
        let status: String = row.get(1)?;
        Ok(OutcomeRow {
            test_key: row.get(0)?,
            status: status.parse().map_err(conversion)?,
            failed_earlier: row.get(2)?,
        })
    })?;
    rows.collect()
}

/// The suite and name of a test.
pub fn test_identity(
    conn: &Connection,
    project_id: &str,
    test_key: &str,
) -> rusqlite::Result<Option<(Option<String>, String)>> {
    conn.prepare_cached("SELECT suite, name FROM tests WHERE project_id = ?1 AND test_key = ?2")?
        .query_row([project_id, test_key], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
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
    pub artifact_id: Option<String>,
    /// JSON of the principal that started it, to fetch the report as.
    pub principal: Option<String>,
}

const IMPORT_COLUMNS: &str =
    "id, run_id, project_id, format, status, error, counts, artifact_id, principal";

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
        principal: row.get(8)?,
    })
}

pub fn insert_import(conn: &Connection, import: &ImportRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO imports (id, run_id, project_id, format, status) VALUES (?1, ?2, ?3, ?4, 'pending')",
        params![import.id, import.run_id, import.project_id, import.format],
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

/// Queues a pending import: its report is stored as `artifact_id`.
pub fn queue_import(
    conn: &Connection,
    id: &str,
    artifact_id: &str,
    principal: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE imports SET artifact_id = ?2, principal = ?3, queued_at = ?4
         WHERE id = ?1 AND status = 'pending' AND artifact_id IS NULL",
        params![id, artifact_id, principal, now],
    )? == 1)
}

/// The oldest queued import.
pub fn next_queued_import(conn: &Connection) -> rusqlite::Result<Option<ImportRow>> {
    conn.prepare_cached(&format!(
        "SELECT {IMPORT_COLUMNS} FROM imports
         WHERE status = 'pending' AND artifact_id IS NOT NULL ORDER BY queued_at LIMIT 1"
    ))?
    .query_row([], import_row)
    .optional()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        MIGRATIONS.apply(&mut conn).unwrap();
        conn
    }

    fn plan(conn: &Connection, sql: &str) -> String {
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
    fn a_runs_results_come_in_arrival_order_from_an_index() {
        assert_index_scan(
            &format!("SELECT {RESULT_COLUMNS} FROM results WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?"),
            "results_by_run",
        );
        assert_index_scan(
            &format!("SELECT {RESULT_COLUMNS} FROM results WHERE run_id = ? AND status = ? AND seq > ? ORDER BY seq LIMIT ?"),
            "results_by_status",
        );
        assert_index_scan(
            &format!("SELECT {RESULT_COLUMNS} FROM results WHERE run_id = ? AND suite = ? AND seq > ? ORDER BY seq LIMIT ?"),
            "results_by_suite",
        );
    }

    #[test]
    fn a_text_search_uses_the_full_text_index() {
        let plan = plan(
            &conn(),
            &format!(
                "SELECT {RESULT_COLUMNS} FROM results WHERE run_id = ?
                 AND seq IN (SELECT rowid FROM results_text WHERE results_text MATCH ? AND rowid BETWEEN ? AND ?)
                 AND seq > ? ORDER BY seq LIMIT ?"
            ),
        );
        assert!(plan.contains("VIRTUAL TABLE INDEX"), "{plan}");
    }

    #[test]
    fn a_runs_first_and_last_result_come_from_its_index() {
        let plan = plan(
            &conn(),
            "SELECT min(seq), max(seq) FROM results WHERE run_id = ?",
        );
        assert!(plan.contains("results_by_run"), "{plan}");
    }

    #[test]
    fn a_tests_history_comes_from_the_history_index() {
        assert_index_scan(
            "SELECT o.run_id, r.name FROM test_outcomes o JOIN runs r ON r.id = o.run_id
             WHERE o.project_id = ? AND o.test_key = ? AND (o.run_started_at, o.run_id) < (?, ?)
             ORDER BY o.run_started_at DESC, o.run_id DESC LIMIT ?",
            "test_history",
        );
    }

    #[test]
    fn the_import_queue_is_read_from_its_index() {
        assert_index_scan(
            &format!("SELECT {IMPORT_COLUMNS} FROM imports WHERE status = 'pending' AND artifact_id IS NOT NULL ORDER BY queued_at LIMIT 1"),
            "imports_queue",
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
