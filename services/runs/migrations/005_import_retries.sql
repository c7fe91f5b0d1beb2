-- The import queue retries with backoff: each import counts its attempts and is
-- taken again only at its next attempt time, earliest first. The report is read
-- without a principal, so none is kept.
ALTER TABLE imports ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE imports ADD COLUMN next_attempt_at INTEGER;
UPDATE imports SET next_attempt_at = queued_at;
DROP INDEX imports_queue;
ALTER TABLE imports DROP COLUMN principal;
CREATE INDEX imports_due ON imports (status, next_attempt_at) WHERE artifact_id IS NOT NULL;
