-- Names became relative paths; a run's artifacts are listed by name prefix.
CREATE INDEX artifacts_by_run_name ON artifacts (run_id, name, id);