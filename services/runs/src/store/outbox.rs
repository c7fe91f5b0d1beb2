//! The outbox: messages stored with the change that makes them, relayed to the bus after
//! it commits.

use verdict_store::rusqlite::{self, params, Connection, Transaction};

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub message_id: String,
    pub subject: String,
    pub payload: Vec<u8>,
}

/// Adds a message to the outbox, in the transaction of the change it tells of.
pub fn enqueue(
    tx: &Transaction<'_>,
    message_id: &str,
    subject: &str,
    payload: &[u8],
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO outbox (message_id, subject, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![message_id, subject, payload, now])?;
    Ok(())
}

/// The oldest messages of the outbox, in the order they were written.
pub fn outbox(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<OutboxRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, message_id, subject, payload FROM outbox ORDER BY id LIMIT ?1",
    )?;
    let rows = statement.query_map([limit], |row| {
        Ok(OutboxRow {
            id: row.get(0)?,
            message_id: row.get(1)?,
            subject: row.get(2)?,
            payload: row.get(3)?,
        })
    })?;
    rows.collect()
}

/// Removes a relayed message from the outbox.
pub fn relayed(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM outbox WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}
