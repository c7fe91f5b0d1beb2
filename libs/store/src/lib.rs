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
pub use pool::{Attached, Store, StoreSettings};
pub use rusqlite;

/// A column that holds a value's text form (a status, an id), parsed without copying
/// it; text that does not parse is a conversion error naming the column.
pub fn parsed<T>(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    row.get_ref(index)?
        .as_str()?
        .parse()
        .map_err(|err: T::Err| {
            rusqlite::Error::FromSqlConversionFailure(
                index,
                rusqlite::types::Type::Text,
                err.to_string().into(),
            )
        })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_column_parses_into_its_type_or_fails_naming_the_column() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let read = |sql: &str| conn.query_row(sql, [], |row| parsed::<u16>(row, 1));
        assert_eq!(read("SELECT 'x', '443'").unwrap(), 443);
        match read("SELECT 'x', 'https'") {
            Err(rusqlite::Error::FromSqlConversionFailure(column, _, err)) => {
                assert_eq!(column, 1);
                assert!(err.to_string().contains("invalid digit"), "{err}");
            }
            other => panic!("expected a conversion error, got {other:?}"),
        }
    }
}
