//! SQLite access shared by every service that owns a database.
//!
//! One writer connection and a small pool of readers, all in WAL mode with foreign keys
//! and a busy timeout, and a checkpointer on a thread of its own. Every call runs on tokio's blocking pool, never on the async
//! threads. Migrations are embedded in the owning crate and applied at open.

pub mod at_rest;
pub mod backup;
mod checkpoint;
pub mod idempotency;
mod migrate;
mod pool;

pub use migrate::Migrations;
pub use pool::{Store, StoreSettings};
pub use rusqlite;

/// The plan SQLite chooses for `sql` (parameters bound to NULL), one step a line. For
/// the tests that check every list query is served by an index.
pub fn query_plan(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<String> {
    let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let nulls = vec![rusqlite::types::Null; statement.parameter_count()];
    let steps = statement.query_map(rusqlite::params_from_iter(nulls.iter()), |row| {
        row.get::<_, String>(3)
    })?;
    Ok(steps.collect::<rusqlite::Result<Vec<_>>>()?.join("\n"))
}

/// Failures of the store itself. Services wrap it in their own error type.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database at {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("migration {version} failed: {source}")]
    Migration {
        version: usize,
        source: rusqlite::Error,
    },
    #[error("the database is at schema version {found}, newer than this build knows ({known}); upgrade the service")]
    SchemaTooNew { found: usize, known: usize },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0} exists already; a backup never overwrites a file")]
    BackupExists(String),
    #[error("{path} is not a sound database: {report}")]
    Corrupt { path: String, report: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid UTF-8, which SQLite needs for a file name")]
    Path { path: String },
    #[error("a store task did not finish: {0}")]
    Task(#[source] tokio::task::JoinError),
}
