-- The status index holds only results that did not pass. Passed results are most of any
-- store, and entering each of them in the index was about 7 % of applying a repeating
-- suite (`BENCHMARKS.md`, "Two rounds in hand, and an index of the results that did not
-- pass"). A run's passed results are read from its range of the table, where they are
-- most of the rows; the other statuses, usually few, still come from an index.
DROP INDEX results_by_status;
CREATE INDEX results_not_passed ON results (status) WHERE status <> 'passed';
