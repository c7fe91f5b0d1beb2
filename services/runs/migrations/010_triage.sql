-- Triage (issue #16): failure signatures, quarantines.
CREATE TABLE signatures (
    sid INTEGER PRIMARY KEY,
    project_id TEXT NOT NULL,
    hash TEXT NOT NULL,
    pattern TEXT NOT NULL,
    example TEXT,
    first_run INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    UNIQUE (project_id, hash)
);
CREATE TABLE failures (
    run INTEGER NOT NULL REFERENCES runs(rid) ON DELETE CASCADE,
    result_id TEXT NOT NULL,
    test INTEGER NOT NULL,
    signature INTEGER NOT NULL,
    run_started_at INTEGER NOT NULL,
    PRIMARY KEY (run, result_id)
) WITHOUT ROWID;
CREATE INDEX failures_by_signature ON failures (signature, run_started_at DESC, run DESC, result_id DESC);
CREATE TABLE quarantines (
    test INTEGER PRIMARY KEY REFERENCES tests(tid),
    project_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    until INTEGER,
    by TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX quarantines_by_project ON quarantines (project_id, test);
CREATE TABLE quarantine_audit (
    id INTEGER PRIMARY KEY,
    test INTEGER NOT NULL,
    action TEXT NOT NULL,
    reason TEXT,
    until INTEGER,
    by TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX quarantine_audit_by_test ON quarantine_audit (test, id DESC);
ALTER TABLE runs ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;
