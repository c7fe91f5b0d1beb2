-- Version 4: the outbox. A message other services must get about a change is
-- written in the change's transaction and relayed to JetStream afterwards
-- (`outbox.rs`), so a change is never committed without its message, nor told
-- before it is committed. `message_id` is JetStream's de-duplication id.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
