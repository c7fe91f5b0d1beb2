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
