CREATE TABLE idempotency_keys (
    id BLOB PRIMARY KEY,
    request BLOB NOT NULL,
    response BLOB NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
