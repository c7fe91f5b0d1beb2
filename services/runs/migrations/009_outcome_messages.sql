-- The message of the result that settled each outcome, so a test's history says why
-- it failed without reading every result of its runs.
ALTER TABLE test_outcomes ADD COLUMN message TEXT;
