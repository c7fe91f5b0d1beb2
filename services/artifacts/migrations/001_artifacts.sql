CREATE TABLE artifacts (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    result_id TEXT,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL CHECK (size >= 0),
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'stored', 'deleted')),
    object_key TEXT NOT NULL UNIQUE,
    upload_id TEXT,
    created_at INTEGER NOT NULL,
    completed_at INTEGER,
    deleted_at INTEGER
);
CREATE INDEX artifacts_by_run ON artifacts (run_id, id);
CREATE INDEX artifacts_by_state ON artifacts (state, created_at);
CREATE TABLE project_usage (
    project_id TEXT PRIMARY KEY,
    bytes INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE service_secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
