-- Runs of sharded CI builds: found by their build key, finished once their shards
-- have; a finish waits for the imports into its run. Imports may go into an
-- existing run.
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
