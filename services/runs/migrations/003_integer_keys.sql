-- Integer keys. Runs and tests get INTEGER PRIMARY KEYs, and results and outcomes
-- refer to them by integer, so the indexes written for every result hold 8-byte
-- integers instead of 36-character ids (the apply step was bound by those B-tree
-- inserts). A result's seq is `(run << 32) + its arrival number in the run`
-- (see `seq_range`): the table itself keeps each run's results together and in
-- order, so `results_by_run` goes, and the status and suite indexes need no run
-- column (their implicit rowid bounds the run). Results refer to their test by
-- integer instead of repeating its 32-character key. The tables are rebuilt; children are
-- dropped before `runs`, so dropping it cascades nowhere. AUTOINCREMENT keeps a
-- deleted run's key, and so its seq range, from being given to a new run.
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
