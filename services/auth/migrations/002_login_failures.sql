-- Failed logins per e-mail (known or not) and client address: an attacker elsewhere
-- cannot lock the owner out, and an unknown e-mail locks like a known one.
-- users.failed_logins and users.locked_until are no longer used; they stay so that an
-- older process still running during an upgrade can read users.
CREATE TABLE login_failures (
    email TEXT NOT NULL,
    client TEXT NOT NULL,
    failures INTEGER NOT NULL,
    locked_until INTEGER,
    last_failed_at INTEGER NOT NULL,
    PRIMARY KEY (email, client)
) WITHOUT ROWID;
CREATE INDEX login_failures_by_age ON login_failures (last_failed_at);
