-- The text index moves out of this file into one of its own (`runs-text.db`, see
-- `store/text.rs`), written by a connection of its own: it was about a fifth of the
-- writer's work, the one thread every result passes through, while the machine's second
-- core idled (`BENCHMARKS.md`, "The text index on a connection of its own"). The writer
-- still notes each result whose text changes, in the same transaction; the indexer
-- takes the notes in order and the writer forgets those it has taken. The writer notes
-- them itself rather than by triggers: a trigger makes every insert of a result keep a
-- statement journal, which cost more than the index it replaced.
CREATE TABLE text_queue (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    -- The result was noted before (changed or deleted), so its old text goes first.
    replaces INTEGER NOT NULL
);
-- An instance of the previous version, still running during an upgrade, fails to apply
-- results without this table and leaves them to this version's instance, which notes
-- them; nothing it is sent is lost (the ingest stream delivers a failed batch again).
DROP TABLE results_text;
