//! Results: written in batches with their tests and outcomes, listed, and read back as a
//! test's history.

use std::collections::{BTreeMap, HashMap};

use verdict_contracts::ids::{ProjectId, RunId};
use verdict_store::rusqlite::{self, params, Connection, OptionalExtension, Row, Transaction};

use super::text::{self, NoteKind};
use super::{boxed, conversion, parsed, triage, RunRow};
use crate::domain::{ResultStatus, Signature, TestOutcome};

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
pub(super) fn seq_range(run: i64) -> (i64, i64) {
    (run << 32, (run << 32) | 0xFFFF_FFFF)
}

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
    by_project: HashMap<ProjectId, HashMap<String, i64>>,
    entries: usize,
}

impl KnownTests {
    /// Entries kept: about 100 bytes each.
    const MAX_ENTRIES: usize = 500_000;

    fn get(&self, project_id: ProjectId, test_key: &str) -> Option<i64> {
        self.by_project.get(&project_id)?.get(test_key).copied()
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
pub struct LearnedTests(Vec<(ProjectId, String, i64)>);

/// Statements applying results, prepared once per transaction, and the last seq given
/// to each run in it (the writer is the transaction's only writer, so it can count).
/// Results' text is only noted here, for the text indexer (`store::text`): the results a
/// transaction stores in a run take consecutive seqs, so they are noted as one range
/// when it finishes.
pub struct ResultWriter<'tx> {
    tx: &'tx Transaction<'tx>,
    known: &'tx KnownTests,
    learned: HashMap<(ProjectId, String), i64>,
    find_test: rusqlite::CachedStatement<'tx>,
    insert_test: rusqlite::CachedStatement<'tx>,
    outcome: rusqlite::CachedStatement<'tx>,
    first_outcome: rusqlite::CachedStatement<'tx>,
    save_outcome: rusqlite::CachedStatement<'tx>,
    last_seq: rusqlite::CachedStatement<'tx>,
    insert_result: rusqlite::CachedStatement<'tx>,
    update_result: rusqlite::CachedStatement<'tx>,
    note_text: rusqlite::CachedStatement<'tx>,
    failures: triage::FailureStatements<'tx>,
    last_seqs: HashMap<i64, i64>,
    /// Per run, the seqs this transaction stored so far, to note for the indexer.
    stored: HashMap<i64, (i64, i64)>,
}

impl<'tx> ResultWriter<'tx> {
    pub fn new(tx: &'tx Transaction<'tx>, known: &'tx KnownTests) -> rusqlite::Result<Self> {
        Ok(Self {
            tx,
            known,
            learned: HashMap::new(),
            find_test: tx.prepare_cached(concat!(
                "SELECT tid FROM tests t WHERE ",
                super::test_is!()
            ))?,
            // Not `RETURNING tid`: SQLite gathers returned rows in a table of their own
            // and keeps a statement journal for them, a tenth of the writer's work when
            // every test is new.
            insert_test: tx.prepare_cached(
                "INSERT INTO tests (project_id, test_key, suite, name) VALUES (?1, ?2, ?3, ?4)",
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
            note_text: tx.prepare_cached(text::NOTE)?,
            failures: triage::FailureStatements::new(tx)?,
            last_seqs: HashMap::new(),
            stored: HashMap::new(),
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
        if let Some(test) = self.known.get(run.project_id, test_key) {
            return Ok(test);
        }
        let key = (run.project_id, test_key.to_owned());
        if let Some(&test) = self.learned.get(&key) {
            return Ok(test);
        }
        let found = self
            .find_test
            .query_row(params![run.project_id, test_key], |row| row.get(0))
            .optional()?;
        let test = match found {
            Some(test) => test,
            None => {
                self.insert_test
                    .execute(params![run.project_id, test_key, suite, name])?;
                self.tx.last_insert_rowid()
            }
        };
        self.learned.insert(key, test);
        Ok(test)
    }

    /// Notes the results stored for the indexer; then the tests this writer looked up
    /// or stored, to remember once the transaction commits.
    pub fn finish(mut self) -> rusqlite::Result<LearnedTests> {
        for (first, last) in self.stored.into_values() {
            self.note_text
                .execute(params![first, last, NoteKind::Index])?;
        }
        Ok(LearnedTests(
            self.learned
                .into_iter()
                .map(|((project_id, test_key), test)| (project_id, test_key, test))
                .collect(),
        ))
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

    /// Stores a result of test `test` (a resend with the same id replaces it) and notes
    /// its text for the indexer: one stored in this transaction is noted when it
    /// finishes, one stored before is noted now.
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
        if self.insert_result.execute(values)? == 1 {
            self.last_seqs.insert(run.rid, last + 1);
            self.stored
                .entry(run.rid)
                .and_modify(|(_, stored)| *stored = last + 1)
                .or_insert((last + 1, last + 1));
            return Ok(());
        }
        let seq: i64 = self.update_result.query_row(values, |row| row.get(0))?;
        let stored_now = self
            .stored
            .get(&run.rid)
            .is_some_and(|&(first, last)| (first..=last).contains(&seq));
        if !stored_now {
            self.note_text
                .execute(params![seq, seq, NoteKind::Replace])?;
        }
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

/// The test is found first, so its history is read in the history index's order (a
/// join would not know that one test at most matches, and sort).
const TEST_HISTORY: &str = concat!(
    "SELECT o.run, r.id, r.name, o.status, o.duration_ms, o.run_started_at, r.attributes,
            o.message
     FROM test_outcomes o JOIN runs r ON r.rid = o.run
     WHERE o.test = (SELECT t.tid FROM tests t WHERE ",
    super::test_is!(),
    ") AND (o.run_started_at, o.run) < (?3, ?4)
     ORDER BY o.run_started_at DESC, o.run DESC LIMIT ?5"
);

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
pub(super) const RESULT_COLUMNS: &str =
    "r.seq, r.id, t.test_key, r.suite, r.name, r.status, r.attempt, r.duration_ms, \
     r.started_at, r.message, r.trace, r.stdout, r.stderr, r.attributes";

pub(super) fn result_row(row: &Row<'_>) -> rusqlite::Result<StoredResult> {
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
    match filter.status {
        // Most of a run's results passed: they are read from its range of the table.
        Some(ResultStatus::Passed) => sql.push_str(" AND r.status = 'passed'"),
        // The index of the others holds no passed result, which the query must say for
        // SQLite to use it.
        Some(status) => {
            sql.push_str(" AND r.status = ? AND r.status <> 'passed'");
            args.push(boxed(status.as_str()));
        }
        None => {}
    }
    if let Some(suite) = &filter.suite {
        sql.push_str(" AND r.suite = ?");
        args.push(boxed(suite));
    }
    if let Some(text) = &filter.text {
        // The text index spans every run; bounding it by this run's seq range lets FTS5
        // seek to the run instead of listing every match in the store. It is its own
        // file, kept by the indexer a moment behind the results (`store::text`).
        sql.push_str(
            " AND r.seq IN (SELECT rowid FROM text_index.results_text WHERE results_text MATCH ? AND rowid BETWEEN ? AND ?)",
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
    pub run_id: RunId,
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
    project_id: ProjectId,
    test_key: &str,
    after: Option<(i64, i64)>,
    limit: u32,
) -> rusqlite::Result<Vec<HistoryRow>> {
    let (after_started, after_rid) = after.unwrap_or((i64::MAX, i64::MAX));
    let mut statement = conn.prepare_cached(TEST_HISTORY)?;
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

#[cfg(test)]
mod tests {
    use verdict_store::rusqlite::params;

    use super::*;
    use crate::domain::{ResultStatus, TestOutcome};
    use crate::store::tests::{
        assert_index_scan, conn, ids, new_run, plan, project, result, run_started_at,
        store_results, text,
    };

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
    fn a_runs_passed_results_come_from_its_range_of_the_table_in_either_order() {
        for order in ["r.seq", "r.seq DESC"] {
            assert_index_scan(
                &format!(
                    "SELECT {RESULT_COLUMNS} FROM results r JOIN tests t ON t.tid = r.test
                     WHERE r.seq BETWEEN ? AND ? AND r.status = 'passed' ORDER BY {order} LIMIT ?"
                ),
                "SEARCH r USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
            );
        }
    }

    #[test]
    fn a_runs_results_by_another_status_or_suite_come_from_their_index_bounded_by_the_run_in_either_order(
    ) {
        for (filter, index) in [
            (
                "r.status = ? AND r.status <> 'passed'",
                "results_not_passed (status=? AND rowid>? AND rowid<?)",
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
                 AND r.seq IN (SELECT rowid FROM text_index.results_text WHERE results_text MATCH ? AND rowid BETWEEN ? AND ?)
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
        assert_index_scan(TEST_HISTORY, "test_history");
        assert_index_scan(TEST_HISTORY, "tests_by_key");
    }

    #[test]
    fn paging_through_a_tests_history_returns_each_run_once_newest_first() {
        let mut conn = conn();
        let runs = [
            run_started_at(&mut conn, 10),
            run_started_at(&mut conn, 20),
            run_started_at(&mut conn, 20),
            run_started_at(&mut conn, 30),
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
        while let Some(row) = test_history(&conn, project(), "k", after, 1).unwrap().pop() {
            after = Some((row.started_at, row.rid));
            seen.push(row.run_id);
        }
        let newest_first: Vec<_> = runs.iter().rev().map(|run| run.id).collect();
        assert_eq!(seen, newest_first);
    }

    #[test]
    fn tests_that_share_a_key_prefix_or_a_key_in_another_project_are_told_apart() {
        let mut conn = conn();
        let stored = new_run(&mut conn);
        let (p, q) = (ProjectId::generate(), ProjectId::generate());
        let run = |project: ProjectId| RunRow {
            project_id: project,
            ..stored.clone()
        };
        let tx = conn.transaction().unwrap();
        let known = KnownTests::default();
        let mut writer = ResultWriter::new(&tx, &known).unwrap();
        let shared = "0123456789ab";
        let first = writer
            .test(&run(p), &format!("{shared}-first"), None, "a")
            .unwrap();
        let second = writer
            .test(&run(p), &format!("{shared}-second"), None, "b")
            .unwrap();
        let elsewhere = writer
            .test(&run(q), &format!("{shared}-first"), None, "a")
            .unwrap();
        assert_eq!(
            [first, second, elsewhere]
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            3
        );
        drop(writer);
        let mut again = ResultWriter::new(&tx, &known).unwrap();
        assert_eq!(
            again
                .test(&run(p), &format!("{shared}-second"), None, "b")
                .unwrap(),
            second
        );
        assert_eq!(
            again
                .test(&run(q), &format!("{shared}-first"), None, "a")
                .unwrap(),
            elsewhere
        );
    }

    #[test]
    fn a_run_whose_seq_range_is_used_up_refuses_more_results_rather_than_spill_over() {
        let mut conn = conn();
        let full = new_run(&mut conn);
        let next = new_run(&mut conn);
        let test = conn
            .query_row(
                "INSERT INTO tests (project_id, test_key, name) VALUES (?1, 'k', 'a') RETURNING tid",
                [full.project_id],
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
        let message = refused.unwrap_err().to_string();
        assert!(
            message.contains(&format!("run {} holds as many results", full.id)),
            "{message}"
        );
        drop(writer);
        assert!(ids(&tx, next.rid, &ResultFilter::default()).is_empty());
    }

    #[test]
    fn a_status_filter_lists_the_runs_results_of_that_status_passed_or_not() {
        let mut conn = conn();
        let run = new_run(&mut conn);
        let other = new_run(&mut conn);
        store_results(
            &mut conn,
            &run,
            &[
                result("a", "a", ResultStatus::Passed, None),
                result("b", "b", ResultStatus::Failed, Some("boom")),
                result("c", "c", ResultStatus::Skipped, None),
                result("d", "d", ResultStatus::Passed, None),
                result("e", "e", ResultStatus::Failed, Some("boom")),
            ],
        );
        store_results(
            &mut conn,
            &other,
            &[
                result("y", "y", ResultStatus::Passed, None),
                result("z", "z", ResultStatus::Failed, Some("boom")),
            ],
        );
        let only = |status| ResultFilter {
            status: Some(status),
            ..ResultFilter::default()
        };

        assert_eq!(ids(&conn, run.rid, &only(ResultStatus::Passed)), ["a", "d"]);
        assert_eq!(ids(&conn, run.rid, &only(ResultStatus::Failed)), ["b", "e"]);
        assert_eq!(ids(&conn, run.rid, &only(ResultStatus::Skipped)), ["c"]);
        assert!(ids(&conn, run.rid, &only(ResultStatus::Errored)).is_empty());
    }

    #[test]
    fn newest_first_pages_go_back_from_the_latest_result_of_the_run() {
        let mut conn = conn();
        let run = new_run(&mut conn);
        let other = new_run(&mut conn);
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
    fn a_result_resent_within_one_transaction_is_found_by_its_last_text_only() {
        let mut conn = conn();
        let run = new_run(&mut conn);
        store_results(
            &mut conn,
            &run,
            &[
                result("x", "a", ResultStatus::Failed, Some("timeout")),
                result("x", "a", ResultStatus::Passed, Some("recovered")),
            ],
        );

        assert!(ids(&conn, run.rid, &text("timeout")).is_empty());
        assert_eq!(ids(&conn, run.rid, &text("recovered")), ["x"]);
    }

    #[test]
    fn a_resent_result_replaces_the_stored_one_in_its_place_and_in_the_text_index() {
        let mut conn = conn();
        let run = new_run(&mut conn);
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
}
