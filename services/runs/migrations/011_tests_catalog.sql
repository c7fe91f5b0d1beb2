-- The catalog search matches every test of a project by name and suite: with both in
-- the index it reads one range of it instead of looking up each test in the table.
CREATE INDEX tests_catalog ON tests (project_id, test_key, name, suite);
