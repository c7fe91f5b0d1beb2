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
