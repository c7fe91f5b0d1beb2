-- Artifacts of kind report: the raw reports of imports, which services read without
-- a principal. A row goes with its artifact.
CREATE TABLE reports (
    artifact_id TEXT PRIMARY KEY REFERENCES artifacts(id) ON DELETE CASCADE
) WITHOUT ROWID;
