//! SQL of triage (issue #16): failure signatures, quarantines, windows of runs and the
//! test catalog. Each query is a constant so the query plan tests check the very text
//! that runs.

use std::collections::BTreeMap;

use verdict_contracts::ids::{ProjectId, RunId};
use verdict_store::rusqlite::{self, params, Connection, OptionalExtension, Row, Transaction};

use super::{parsed, result_row, RunRow, StoredResult, RESULT_COLUMNS};
use crate::domain::{ResultStatus, RunStatus, Signature};

/// The most runs a window by days looks at.
pub const MAX_RUNS_BY_DAYS: u32 = 2000;
/// The most audit entries shown for a test.
pub const MAX_AUDIT: u32 = 100;

// ---- recording failures (the apply path) ---------------------------------------------

const FIND_SIGNATURE: &str = "SELECT sid FROM signatures WHERE project_id = ?1 AND hash = ?2";
const INSERT_SIGNATURE: &str =
    "INSERT INTO signatures (project_id, hash, pattern, example, first_run, first_seen)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING sid";
const SAVE_FAILURE: &str = "INSERT INTO failures (run, result_id, test, signature, run_started_at)
     VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (run, result_id) DO UPDATE SET test = excluded.test, signature = excluded.signature";
const FORGET_FAILURE: &str = "DELETE FROM failures WHERE run = ?1 AND result_id = ?2";

/// Statements recording failures' signatures, prepared once per transaction.
pub struct FailureStatements<'tx> {
    find_signature: rusqlite::CachedStatement<'tx>,
    insert_signature: rusqlite::CachedStatement<'tx>,
    save_failure: rusqlite::CachedStatement<'tx>,
    forget_failure: rusqlite::CachedStatement<'tx>,
}

impl<'tx> FailureStatements<'tx> {
    pub fn new(tx: &'tx Transaction<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            find_signature: tx.prepare_cached(FIND_SIGNATURE)?,
            insert_signature: tx.prepare_cached(INSERT_SIGNATURE)?,
            save_failure: tx.prepare_cached(SAVE_FAILURE)?,
            forget_failure: tx.prepare_cached(FORGET_FAILURE)?,
        })
    }

    /// Records that result `result_id` of test `test` failed with `signature` (its
    /// message an example), or, with `None`, that it is no failure (any more).
    pub fn record(
        &mut self,
        run: &RunRow,
        test: i64,
        result_id: &str,
        failure: Option<(&Signature, Option<&str>)>,
    ) -> rusqlite::Result<()> {
        let Some((signature, message)) = failure else {
            self.forget_failure.execute(params![run.rid, result_id])?;
            return Ok(());
        };
        let found: Option<i64> = self
            .find_signature
            .query_row(params![run.project_id, signature.id], |row| row.get(0))
            .optional()?;
        let sid = match found {
            Some(sid) => sid,
            None => self.insert_signature.query_row(
                params![
                    run.project_id,
                    signature.id,
                    signature.pattern,
                    message,
                    run.rid,
                    run.started_at
                ],
                |row| row.get(0),
            )?,
        };
        self.save_failure
            .execute(params![run.rid, result_id, test, sid, run.started_at])?;
        Ok(())
    }
}

// ---- windows of runs ------------------------------------------------------------------

/// A finished run of a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRun {
    pub rid: i64,
    pub id: RunId,
    pub status: RunStatus,
    pub started_at: i64,
    pub finished_at: i64,
}

/// Which finished runs: the latest `limit` started at or after `since`, with every
/// attribute given.
#[derive(Debug, Clone, Default)]
pub struct WindowFilter {
    pub attributes: BTreeMap<String, String>,
    pub since: Option<i64>,
    pub limit: u32,
}

const WINDOW_RUNS: &str =
    "SELECT rid, id, status, started_at, finished_at FROM runs INDEXED BY runs_by_project
     WHERE project_id = ? AND finished_at IS NOT NULL AND started_at >= ?";
const WINDOW_RUNS_BY_ATTRIBUTE: &str = "SELECT r.rid, r.id, r.status, r.started_at, r.finished_at
     FROM run_attributes a JOIN runs r ON r.id = a.run_id
     WHERE a.project_id = ? AND a.key = ? AND a.value = ? AND r.finished_at IS NOT NULL
       AND a.started_at >= ?";

/// A project's finished runs of a window, newest first.
pub fn window_runs(
    conn: &Connection,
    project_id: ProjectId,
    filter: &WindowFilter,
) -> rusqlite::Result<Vec<WindowRun>> {
    let since = filter.since.unwrap_or(i64::MIN);
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(project_id.to_owned())];
    let mut attributes = filter.attributes.iter();
    let sql = match attributes.next() {
        Some((key, value)) => {
            args.push(Box::new(key.clone()));
            args.push(Box::new(value.clone()));
            args.push(Box::new(since));
            let mut sql = WINDOW_RUNS_BY_ATTRIBUTE.to_owned();
            for (key, value) in attributes {
                sql.push_str(" AND EXISTS (SELECT 1 FROM run_attributes b WHERE b.run_id = a.run_id AND b.key = ? AND b.value = ?)");
                args.push(Box::new(key.clone()));
                args.push(Box::new(value.clone()));
            }
            sql.push_str(" ORDER BY a.started_at DESC, a.run_id DESC LIMIT ?");
            sql
        }
        None => {
            args.push(Box::new(since));
            format!("{WINDOW_RUNS} ORDER BY started_at DESC, id DESC LIMIT ?")
        }
    };
    args.push(Box::new(filter.limit));
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(args.iter()), |row| {
        Ok(WindowRun {
            rid: row.get(0)?,
            id: row.get(1)?,
            status: parsed(row, 2)?,
            started_at: row.get(3)?,
            finished_at: row.get(4)?,
        })
    })?;
    rows.collect()
}

const PREVIOUS_RUN: &str = "SELECT rid, id FROM runs INDEXED BY runs_by_project
     WHERE project_id = ?1 AND (started_at, id) < (?2, ?3) AND finished_at IS NOT NULL
     ORDER BY started_at DESC, id DESC LIMIT 1";
const PREVIOUS_RUN_BY_ATTRIBUTE: &str = "SELECT r.rid, r.id
     FROM run_attributes a JOIN runs r ON r.id = a.run_id
     WHERE a.project_id = ?1 AND a.key = ?4 AND a.value = ?5 AND (a.started_at, a.run_id) < (?2, ?3)
       AND r.finished_at IS NOT NULL
     ORDER BY a.started_at DESC, a.run_id DESC LIMIT 1";

/// The finished run before `run` with the same value of attribute `baseline` (of the
/// project, when `run` has no such attribute): `(rid, id)`.
pub fn previous_run(
    conn: &Connection,
    run: &RunRow,
    baseline: &str,
) -> rusqlite::Result<Option<(i64, RunId)>> {
    let read = |row: &Row<'_>| Ok((row.get(0)?, row.get(1)?));
    match run.attributes.get(baseline) {
        Some(value) => conn.prepare_cached(PREVIOUS_RUN_BY_ATTRIBUTE)?.query_row(
            params![run.project_id, run.started_at, run.id, baseline, value],
            read,
        ),
        None => conn
            .prepare_cached(PREVIOUS_RUN)?
            .query_row(params![run.project_id, run.started_at, run.id], read),
    }
    .optional()
}

// ---- failures and signatures -------------------------------------------------------------

/// One failed result of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRow {
    pub result_id: String,
    pub test: i64,
    pub signature: i64,
}

const FAILURES_OF_RUN: &str = "SELECT result_id, test, signature FROM failures WHERE run = ?1";

pub fn failures_of_run(conn: &Connection, rid: i64) -> rusqlite::Result<Vec<FailureRow>> {
    let mut statement = conn.prepare_cached(FAILURES_OF_RUN)?;
    let rows = statement.query_map([rid], |row| {
        Ok(FailureRow {
            result_id: row.get(0)?,
            test: row.get(1)?,
            signature: row.get(2)?,
        })
    })?;
    rows.collect()
}

/// A signature as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRow {
    pub sid: i64,
    pub hash: String,
    pub pattern: String,
    pub example: Option<String>,
    pub first_run: i64,
    pub first_seen: i64,
}

const SIGNATURE_BY_SID: &str =
    "SELECT sid, hash, pattern, example, first_run, first_seen FROM signatures WHERE sid = ?1";
const SIGNATURE_BY_HASH: &str = "SELECT sid, hash, pattern, example, first_run, first_seen FROM signatures WHERE project_id = ?1 AND hash = ?2";

fn signature_row(row: &Row<'_>) -> rusqlite::Result<SignatureRow> {
    Ok(SignatureRow {
        sid: row.get(0)?,
        hash: row.get(1)?,
        pattern: row.get(2)?,
        example: row.get(3)?,
        first_run: row.get(4)?,
        first_seen: row.get(5)?,
    })
}

pub fn signature(conn: &Connection, sid: i64) -> rusqlite::Result<Option<SignatureRow>> {
    conn.prepare_cached(SIGNATURE_BY_SID)?
        .query_row([sid], signature_row)
        .optional()
}

pub fn signature_by_hash(
    conn: &Connection,
    project_id: ProjectId,
    hash: &str,
) -> rusqlite::Result<Option<SignatureRow>> {
    conn.prepare_cached(SIGNATURE_BY_HASH)?
        .query_row(params![project_id, hash], signature_row)
        .optional()
}

/// A failed result of a signature, with its run.
#[derive(Debug, Clone)]
pub struct SignatureResult {
    pub run_started_at: i64,
    pub rid: i64,
    pub run_id: RunId,
    pub result: StoredResult,
}

/// Page key of a signature's results: `(run_started_at, rid, result id)`.
pub type SignatureResultKey = (i64, i64, String);

fn signature_results_sql() -> String {
    format!(
        "SELECT {RESULT_COLUMNS}, f.run_started_at, f.run, ru.id
         FROM failures f JOIN results r ON r.run = f.run AND r.id = f.result_id
         JOIN tests t ON t.tid = r.test JOIN runs ru ON ru.rid = f.run
         WHERE f.signature = ?1 AND (f.run_started_at, f.run, f.result_id) < (?2, ?3, ?4)
         ORDER BY f.run_started_at DESC, f.run DESC, f.result_id DESC LIMIT ?5"
    )
}

/// The failed results of a signature, newest run first.
pub fn signature_results(
    conn: &Connection,
    sid: i64,
    after: Option<SignatureResultKey>,
    limit: u32,
) -> rusqlite::Result<Vec<SignatureResult>> {
    // No result id sorts above U+10FFFF, so the first page starts above every key.
    let (at, rid, id) = after.unwrap_or((i64::MAX, i64::MAX, "\u{10FFFF}".to_owned()));
    let mut statement = conn.prepare_cached(&signature_results_sql())?;
    let rows = statement.query_map(params![sid, at, rid, id, limit], |row| {
        Ok(SignatureResult {
            result: result_row(row)?,
            run_started_at: row.get(14)?,
            rid: row.get(15)?,
            run_id: row.get(16)?,
        })
    })?;
    rows.collect()
}

// ---- tests, outcomes and quarantines ------------------------------------------------------

/// A test of the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRow {
    pub tid: i64,
    pub test_key: String,
    pub suite: Option<String>,
    pub name: String,
}

fn test_row(row: &Row<'_>) -> rusqlite::Result<TestRow> {
    Ok(TestRow {
        tid: row.get(0)?,
        test_key: row.get(1)?,
        suite: row.get(2)?,
        name: row.get(3)?,
    })
}

const TEST_BY_KEY: &str = concat!(
    "SELECT tid, test_key, suite, name FROM tests t WHERE ",
    super::test_is!()
);
const TEST_BY_TID: &str = "SELECT tid, test_key, suite, name FROM tests WHERE tid = ?1";

pub fn test_by_key(
    conn: &Connection,
    project_id: ProjectId,
    test_key: &str,
) -> rusqlite::Result<Option<TestRow>> {
    conn.prepare_cached(TEST_BY_KEY)?
        .query_row(params![project_id, test_key], test_row)
        .optional()
}

pub fn test_by_tid(conn: &Connection, tid: i64) -> rusqlite::Result<Option<TestRow>> {
    conn.prepare_cached(TEST_BY_TID)?
        .query_row([tid], test_row)
        .optional()
}

/// A test's final outcome in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentOutcome {
    pub status: ResultStatus,
    pub failed_earlier: bool,
    pub duration_ms: Option<u64>,
    pub run_started_at: i64,
}

fn recent_outcome(row: &Row<'_>) -> rusqlite::Result<RecentOutcome> {
    Ok(RecentOutcome {
        status: parsed(row, 0)?,
        failed_earlier: row.get(1)?,
        duration_ms: row.get(2)?,
        run_started_at: row.get(3)?,
    })
}

const OUTCOME_IN_RUN: &str = "SELECT status, failed_earlier, duration_ms, run_started_at
     FROM test_outcomes WHERE run = ?1 AND test = ?2";
const RECENT_OUTCOMES: &str = "SELECT status, failed_earlier, duration_ms, run_started_at
     FROM test_outcomes WHERE test = ?1 ORDER BY run_started_at DESC, run DESC LIMIT ?2";
const DURATIONS_OF_RUN: &str = "SELECT test, status, duration_ms FROM test_outcomes WHERE run = ?1";

pub fn outcome_in_run(
    conn: &Connection,
    rid: i64,
    test: i64,
) -> rusqlite::Result<Option<RecentOutcome>> {
    conn.prepare_cached(OUTCOME_IN_RUN)?
        .query_row([rid, test], recent_outcome)
        .optional()
}

/// A test's latest `limit` outcomes, newest first.
pub fn recent_outcomes(
    conn: &Connection,
    test: i64,
    limit: u32,
) -> rusqlite::Result<Vec<RecentOutcome>> {
    let mut statement = conn.prepare_cached(RECENT_OUTCOMES)?;
    let rows = statement.query_map(params![test, limit], recent_outcome)?;
    rows.collect()
}

/// Every test's status and duration in one run: `(test, status, duration)`.
pub fn durations_in_run(
    conn: &Connection,
    rid: i64,
) -> rusqlite::Result<Vec<(i64, ResultStatus, Option<u64>)>> {
    let mut statement = conn.prepare_cached(DURATIONS_OF_RUN)?;
    let rows = statement.query_map([rid], |row| Ok((row.get(0)?, parsed(row, 1)?, row.get(2)?)))?;
    rows.collect()
}

/// A quarantine as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineRow {
    pub reason: String,
    pub until: Option<i64>,
    pub by: String,
    pub at: i64,
}

const QUARANTINE_OF_TEST: &str = "SELECT reason, until, by, at FROM quarantines WHERE test = ?1";

fn quarantine_row(row: &Row<'_>, offset: usize) -> rusqlite::Result<QuarantineRow> {
    Ok(QuarantineRow {
        reason: row.get(offset)?,
        until: row.get(offset + 1)?,
        by: row.get(offset + 2)?,
        at: row.get(offset + 3)?,
    })
}

pub fn quarantine(conn: &Connection, test: i64) -> rusqlite::Result<Option<QuarantineRow>> {
    conn.prepare_cached(QUARANTINE_OF_TEST)?
        .query_row([test], |row| quarantine_row(row, 0))
        .optional()
}

/// Quarantines a test (or changes its quarantine) and notes it in the audit trail.
pub fn set_quarantine(
    tx: &Transaction<'_>,
    project_id: ProjectId,
    test: i64,
    quarantine: &QuarantineRow,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO quarantines (test, project_id, reason, until, by, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (test) DO UPDATE SET reason = excluded.reason, until = excluded.until,
             by = excluded.by, at = excluded.at",
    )?
    .execute(params![
        test,
        project_id,
        quarantine.reason,
        quarantine.until,
        quarantine.by,
        quarantine.at
    ])?;
    audit(
        tx,
        test,
        "quarantined",
        Some(&quarantine.reason),
        quarantine.until,
        &quarantine.by,
        quarantine.at,
    )
}

/// Releases a test from quarantine, noting it in the audit trail; `false` when it was
/// not quarantined.
pub fn release_quarantine(
    tx: &Transaction<'_>,
    test: i64,
    by: &str,
    at: i64,
) -> rusqlite::Result<bool> {
    let released = tx
        .prepare_cached("DELETE FROM quarantines WHERE test = ?1")?
        .execute([test])?
        == 1;
    if released {
        audit(tx, test, "released", None, None, by, at)?;
    }
    Ok(released)
}

fn audit(
    tx: &Transaction<'_>,
    test: i64,
    action: &str,
    reason: Option<&str>,
    until: Option<i64>,
    by: &str,
    at: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO quarantine_audit (test, action, reason, until, by, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![test, action, reason, until, by, at])?;
    Ok(())
}

/// One entry of a test's quarantine audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub action: String,
    pub reason: Option<String>,
    pub until: Option<i64>,
    pub by: String,
    pub at: i64,
}

const AUDIT_OF_TEST: &str = "SELECT action, reason, until, by, at FROM quarantine_audit
     WHERE test = ?1 ORDER BY id DESC LIMIT ?2";

/// A test's quarantine audit trail, newest first.
pub fn audit_trail(conn: &Connection, test: i64) -> rusqlite::Result<Vec<AuditRow>> {
    let mut statement = conn.prepare_cached(AUDIT_OF_TEST)?;
    let rows = statement.query_map(params![test, MAX_AUDIT], |row| {
        Ok(AuditRow {
            action: row.get(0)?,
            reason: row.get(1)?,
            until: row.get(2)?,
            by: row.get(3)?,
            at: row.get(4)?,
        })
    })?;
    rows.collect()
}

// A project has few quarantines and a run many outcomes: CROSS JOIN keeps the
// quarantines outside, each probing the run's outcome of its test.
const QUARANTINED_FAILURES: &str =
    "SELECT count(*) FROM quarantines q INDEXED BY quarantines_by_project
     CROSS JOIN test_outcomes o ON o.run = ?2 AND o.test = q.test
     WHERE q.project_id = ?1 AND (q.until IS NULL OR q.until > ?3)
       AND o.status IN ('failed', 'errored')";

/// How many of the run's failed or errored tests are quarantined at `at`.
pub fn quarantined_failures(conn: &Connection, run: &RunRow, at: i64) -> rusqlite::Result<u64> {
    conn.prepare_cached(QUARANTINED_FAILURES)?
        .query_row(params![run.project_id, run.rid, at], |row| row.get(0))
}

// ---- the catalog ----------------------------------------------------------------------

/// A test of the catalog with its quarantine, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogRow {
    pub test: TestRow,
    pub quarantine: Option<QuarantineRow>,
}

/// How the catalog is searched: `pattern` is a LIKE pattern (escaped with `\`) over
/// name and suite.
#[derive(Debug, Clone, Default)]
pub struct CatalogFilter {
    pub pattern: Option<String>,
    pub quarantined: bool,
    /// The integer key of the last test of the previous page; 0 on the first page.
    pub after: i64,
}

const CATALOG: &str = "SELECT t.tid, t.test_key, t.suite, t.name, q.reason, q.until, q.by, q.at
     FROM tests t LEFT JOIN quarantines q ON q.test = t.tid
     WHERE t.project_id = ?1 AND t.tid > ?2
       AND (?3 IS NULL OR t.name LIKE ?3 ESCAPE '\\' OR t.suite LIKE ?3 ESCAPE '\\')
     ORDER BY t.tid LIMIT ?4";
const QUARANTINED_CATALOG: &str =
    "SELECT t.tid, t.test_key, t.suite, t.name, q.reason, q.until, q.by, q.at
     FROM quarantines q JOIN tests t ON t.tid = q.test
     WHERE q.project_id = ?1 AND q.test > ?2
       AND (?3 IS NULL OR t.name LIKE ?3 ESCAPE '\\' OR t.suite LIKE ?3 ESCAPE '\\')
     ORDER BY q.test LIMIT ?4";

/// A page of the project's tests (or of its quarantined ones) in the order they were
/// first seen.
pub fn catalog(
    conn: &Connection,
    project_id: ProjectId,
    filter: &CatalogFilter,
    limit: u32,
) -> rusqlite::Result<Vec<CatalogRow>> {
    let read = |row: &Row<'_>| {
        let reason: Option<String> = row.get(4)?;
        Ok(CatalogRow {
            test: test_row(row)?,
            quarantine: match reason {
                Some(_) => Some(quarantine_row(row, 4)?),
                None => None,
            },
        })
    };
    let query = match filter.quarantined {
        true => QUARANTINED_CATALOG,
        false => CATALOG,
    };
    conn.prepare_cached(query)?
        .query_map(
            params![project_id, filter.after, filter.pattern, limit],
            read,
        )?
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{conn, plan, project};

    fn run(conn: &mut Connection, started_at: i64) -> RunRow {
        let mut run = RunRow {
            rid: 0,
            id: RunId::generate(),
            project_id: project(),
            name: "nightly".into(),
            status: RunStatus::Running,
            attributes: BTreeMap::new(),
            started_at,
            finished_at: None,
            counts: Default::default(),
            build_key: None,
            finishing: Default::default(),
        };
        let tx = conn.transaction().unwrap();
        super::super::insert_run(&tx, &mut run).unwrap();
        tx.commit().unwrap();
        run
    }

    /// Applies results to `run` as the ingest does.
    fn apply(conn: &mut Connection, run: &RunRow, results: serde_json::Value) {
        let inputs: Vec<crate::domain::ResultInput> = serde_json::from_value(results).unwrap();
        let tx = conn.transaction().unwrap();
        {
            let known = super::super::KnownTests::default();
            let mut writer = super::super::ResultWriter::new(&tx, &known).unwrap();
            let mut batch = crate::ingest::Batch::new(run, inputs.len());
            for input in inputs {
                batch
                    .apply(&mut writer, input.validate("r").unwrap())
                    .unwrap();
            }
            batch.finish(&tx, 0).unwrap();
            writer.finish().unwrap();
        }
        tx.commit().unwrap();
    }

    #[test]
    fn applying_failures_records_one_signature_for_the_same_error_with_other_numbers() {
        let mut conn = conn();
        let first = run(&mut conn, 10);
        apply(
            &mut conn,
            &first,
            serde_json::json!([
                { "id": "a", "name": "a", "status": "failed", "message": "expected 3 got 4" },
                { "id": "b", "name": "b", "status": "errored", "message": "expected 7 got 9" },
                { "id": "c", "name": "c", "status": "passed" },
            ]),
        );
        let failures = failures_of_run(&conn, first.rid).unwrap();
        assert_eq!(failures.len(), 2);
        assert_eq!(failures[0].signature, failures[1].signature);
        let signature = signature(&conn, failures[0].signature).unwrap().unwrap();
        assert_eq!(signature.pattern, "expected {n} got {n}");
        assert_eq!((signature.first_run, signature.first_seen), (first.rid, 10));
        assert_eq!(signature.example.as_deref(), Some("expected 3 got 4"));

        let second = run(&mut conn, 20);
        apply(
            &mut conn,
            &second,
            serde_json::json!([{ "id": "a", "name": "a", "status": "failed", "message": "expected 1 got 2" }]),
        );
        let again = failures_of_run(&conn, second.rid).unwrap();
        assert_eq!(
            again[0].signature, failures[0].signature,
            "first seen earlier"
        );
        let results = signature_results(&conn, again[0].signature, None, 10).unwrap();
        let runs: Vec<_> = results.iter().map(|r| r.run_id).collect();
        assert_eq!(runs, [second.id, first.id, first.id], "newest run first");
    }

    #[test]
    fn a_failure_resent_as_passed_is_forgotten() {
        let mut conn = conn();
        let run = run(&mut conn, 10);
        let result = |status: &str| serde_json::json!([{ "id": "x", "name": "x", "status": status, "message": "boom" }]);
        apply(&mut conn, &run, result("failed"));
        assert_eq!(failures_of_run(&conn, run.rid).unwrap().len(), 1);
        apply(&mut conn, &run, result("passed"));
        assert!(failures_of_run(&conn, run.rid).unwrap().is_empty());
    }

    #[test]
    fn the_catalog_finds_tests_by_words_in_their_name_or_suite() {
        let mut conn = conn();
        let run = run(&mut conn, 10);
        apply(
            &mut conn,
            &run,
            serde_json::json!([
                { "name": "checkout applies coupon", "status": "passed" },
                { "suite": "checkout", "name": "total", "status": "passed" },
                { "name": "login", "status": "passed" },
            ]),
        );
        let search = |pattern: &str| {
            let filter = CatalogFilter {
                pattern: Some(pattern.into()),
                ..CatalogFilter::default()
            };
            let mut names: Vec<_> = catalog(&conn, project(), &filter, 10)
                .unwrap()
                .into_iter()
                .map(|row| row.test.name)
                .collect();
            names.sort();
            names
        };
        assert_eq!(search("%checkout%"), ["checkout applies coupon", "total"]);
        assert_eq!(search("%log%"), ["login"]);
        assert!(search("%\\%%").is_empty());
    }

    fn assert_plan(sql: &str, expected: &[&str]) {
        let plan = plan(&conn(), sql);
        for step in expected {
            assert!(plan.contains(step), "expected {step}:\n{plan}");
        }
        assert!(!plan.contains("TEMP B-TREE"), "sorts in memory:\n{plan}");
        assert!(
            !plan
                .lines()
                .any(|line| line.trim_start().starts_with("SCAN")),
            "scans a table:\n{plan}"
        );
    }

    #[test]
    fn a_failures_signature_is_found_by_project_and_hash() {
        assert_plan(FIND_SIGNATURE, &["sqlite_autoindex_signatures_1"]);
        assert_plan(SIGNATURE_BY_HASH, &["sqlite_autoindex_signatures_1"]);
        assert_plan(SIGNATURE_BY_SID, &["INTEGER PRIMARY KEY"]);
    }

    #[test]
    fn a_failure_is_saved_and_forgotten_by_its_primary_key() {
        assert_plan(FORGET_FAILURE, &["PRIMARY KEY (run=? AND result_id=?)"]);
    }

    #[test]
    fn a_runs_failures_come_from_the_primary_key() {
        assert_plan(FAILURES_OF_RUN, &["PRIMARY KEY (run=?)"]);
    }

    #[test]
    fn a_signatures_results_are_a_keyset_scan_of_the_signature_index() {
        assert_plan(
            &signature_results_sql(),
            &[
                "failures_by_signature (signature=?",
                "results_by_id (run=? AND id=?)",
            ],
        );
    }

    #[test]
    fn window_runs_come_from_the_project_or_the_attribute_index_newest_first() {
        assert_plan(
            &format!("{WINDOW_RUNS} ORDER BY started_at DESC, id DESC LIMIT ?"),
            &["runs_by_project (project_id=?"],
        );
        assert_plan(
            &format!(
                "{WINDOW_RUNS_BY_ATTRIBUTE} ORDER BY a.started_at DESC, a.run_id DESC LIMIT ?"
            ),
            &["run_attributes_lookup (project_id=? AND key=? AND value=?"],
        );
    }

    #[test]
    fn the_previous_run_of_a_baseline_is_one_step_of_an_index() {
        assert_plan(PREVIOUS_RUN, &["runs_by_project (project_id=?"]);
        assert_plan(
            PREVIOUS_RUN_BY_ATTRIBUTE,
            &["run_attributes_lookup (project_id=? AND key=? AND value=?"],
        );
    }

    #[test]
    fn outcomes_come_from_the_primary_key_or_the_history_index() {
        assert_plan(OUTCOME_IN_RUN, &["PRIMARY KEY (run=? AND test=?)"]);
        assert_plan(DURATIONS_OF_RUN, &["PRIMARY KEY (run=?)"]);
        assert_plan(RECENT_OUTCOMES, &["test_history (test=?)"]);
    }

    #[test]
    fn tests_are_found_by_key_or_integer_key() {
        assert_plan(TEST_BY_KEY, &["tests_by_key (<expr>=?)"]);
        assert_plan(TEST_BY_TID, &["INTEGER PRIMARY KEY"]);
    }

    #[test]
    fn quarantines_and_their_audit_trail_come_from_their_keys() {
        assert_plan(QUARANTINE_OF_TEST, &["INTEGER PRIMARY KEY"]);
        assert_plan(AUDIT_OF_TEST, &["quarantine_audit_by_test (test=?)"]);
        assert_plan(
            QUARANTINED_FAILURES,
            &[
                "quarantines_by_project (project_id=?)",
                "PRIMARY KEY (run=? AND test=?)",
            ],
        );
    }

    #[test]
    fn the_catalog_is_a_keyset_scan_of_the_project_s_tests_or_quarantines() {
        assert_plan(CATALOG, &["tests_by_project (project_id=? AND rowid>?)"]);
        assert_plan(
            QUARANTINED_CATALOG,
            &["quarantines_by_project (project_id=? AND test>?)"],
        );
    }
}
