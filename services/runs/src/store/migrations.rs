//! The runs database's schema, one migration per step; a database is brought to the
//! latest version when the service starts.

use verdict_store::Migrations;

use super::triage;

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

#[cfg(test)]
mod tests {
    use verdict_store::rusqlite::Connection;
    use verdict_store::Migrations;

    use super::*;
    use crate::domain::ResultStatus;
    use crate::store::tests::{ids, result, store_results, text};
    use crate::store::*;

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
}
