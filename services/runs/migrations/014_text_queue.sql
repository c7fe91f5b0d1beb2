-- The text index moves out of this file into one of its own (`runs-text.db`, see
-- `store/text.rs`), written by a thread of its own: it was about a fifth of the writer's
-- work, the one thread every result passes through, while the machine's second core
-- idled (`BENCHMARKS.md`, "The text index on a thread of its own"). What the writer
-- still does is note, by these triggers, each result whose text changes; the indexer
-- takes the notes in order and the writer forgets those it has taken. Triggers, rather
-- than statements in the writer, also note the results that an instance of the
-- previous version writes during an upgrade, and every way results are deleted.
CREATE TABLE text_queue (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    -- The result was indexed before (changed or deleted), so its old text goes first.
    replaces INTEGER NOT NULL
);
CREATE TRIGGER text_queue_insert AFTER INSERT ON results BEGIN
    INSERT INTO text_queue (seq, replaces) VALUES (new.seq, 0);
END;
CREATE TRIGGER text_queue_update AFTER UPDATE OF name, message ON results BEGIN
    INSERT INTO text_queue (seq, replaces) VALUES (new.seq, 1);
END;
CREATE TRIGGER text_queue_delete AFTER DELETE ON results BEGIN
    INSERT INTO text_queue (seq, replaces) VALUES (old.seq, 1);
END;
-- An instance of the previous version still writes here during an upgrade, so the
-- table stays, emptied; a later migration drops it.
INSERT INTO results_text (results_text) VALUES ('delete-all');
