-- A note covers a range of results rather than one: the writer notes the results a
-- transaction stored in a run as one range, instead of one insert per result (a third
-- of the statements it ran per result), and a deleted run's results as one range too.
-- `kind` says what the indexer does with the range: 0 indexes the results' text,
-- 1 replaces the text it indexed before, 2 removes it. The notes already waiting keep
-- their meaning: one result each, 0 or 1.
ALTER TABLE text_queue RENAME COLUMN seq TO first;
ALTER TABLE text_queue ADD COLUMN last INTEGER NOT NULL DEFAULT 0;
UPDATE text_queue SET last = first;
ALTER TABLE text_queue RENAME COLUMN replaces TO kind;
