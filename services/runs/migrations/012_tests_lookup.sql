-- Tests are found by a short prefix of their key rather than by (project, key): the
-- writer inserts each new test into every index of `tests` at a random place (keys are
-- hashes), and the two indexes keyed by the 36-character project id and the
-- 32-character key made that the largest cost of ingesting new tests (`BENCHMARKS.md`,
-- "Finding tests by a key prefix"). The prefix index holds 12 characters per test;
-- a lookup checks project and full key on the few rows that share the prefix (the same
-- test in several projects, or a prefix collision). A project's (project, key) pair
-- stays unique because the runs service's one writer looks a test up before it inserts
-- one. The catalog lists a project's tests in the order they were first seen, from an
-- index that new tests append to. The table is rebuilt to drop its UNIQUE constraint;
-- foreign keys are checked after the migration (see `verdict_store::Migrations`).
CREATE TABLE tests_v12 (
    tid INTEGER PRIMARY KEY,
    project_id TEXT NOT NULL,
    test_key TEXT NOT NULL,
    suite TEXT,
    name TEXT NOT NULL
);
INSERT INTO tests_v12 (tid, project_id, test_key, suite, name)
SELECT tid, project_id, test_key, suite, name FROM tests;
DROP TABLE tests;
ALTER TABLE tests_v12 RENAME TO tests;
CREATE INDEX tests_by_key ON tests (substr(test_key, 1, 12));
CREATE INDEX tests_by_project ON tests (project_id);
