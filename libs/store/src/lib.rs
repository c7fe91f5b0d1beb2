//! SQLite access shared by every service that owns a database.
//!
//! One writer connection and a small pool of readers, all in WAL mode with foreign keys
//! and a busy timeout. Every call runs on tokio's blocking pool, never on the async
//! threads. Migrations are embedded in the owning crate and applied at open.

mod migrate;
mod pool;

pub use migrate::Migrations;
pub use pool::{Store, StoreSettings};
pub use rusqlite;

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
    #[error("a store task did not finish: {0}")]
    Task(String),
}
