use rusqlite::Connection;

use crate::StoreError;

/// A service's schema history: each entry is one migration (any number of statements),
/// applied once, in order, inside a transaction. The applied count lives in SQLite's
/// `user_version`, so migrations never run twice and never need a table of their own.
/// Append only: editing a released migration would leave existing databases behind.
#[derive(Debug, Clone, Copy)]
pub struct Migrations(pub &'static [&'static str]);

impl Migrations {
    /// Brings `conn` to the latest version. Refuses a database written by a newer build.
    pub fn apply(&self, conn: &mut Connection) -> Result<(), StoreError> {
        let known = self.0.len();
        let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let found = usize::try_from(found).unwrap_or(usize::MAX);
        if found > known {
            return Err(StoreError::SchemaTooNew { found, known });
        }
        for (index, sql) in self.0.iter().enumerate().skip(found) {
            let version = index + 1;
            let tx = conn.transaction()?;
            tx.execute_batch(sql)
                .and_then(|()| tx.pragma_update(None, "user_version", version as i64))
                .map_err(|source| StoreError::Migration { version, source })?;
            tx.commit()?;
            tracing::info!(version, "applied migration");
        }
        Ok(())
    }

    /// A private in-memory database at the latest version, with foreign keys enforced
    /// as in a service's own: the one way store tests and query-plan checks get one.
    pub fn in_memory(&self) -> Result<Connection, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", true)?;
        self.apply(&mut conn)?;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: Migrations = Migrations(&[
        "CREATE TABLE a (id INTEGER PRIMARY KEY);",
        "ALTER TABLE a ADD COLUMN name TEXT;",
    ]);

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn an_in_memory_database_is_migrated_and_enforces_foreign_keys() {
        let conn = Migrations(&[
            "CREATE TABLE a (id INTEGER PRIMARY KEY);",
            "CREATE TABLE b (a_id INTEGER NOT NULL REFERENCES a (id));",
        ])
        .in_memory()
        .unwrap();
        assert_eq!(version(&conn), 2);
        assert!(conn.execute("INSERT INTO b (a_id) VALUES (7)", []).is_err());
    }

    #[test]
    fn applying_twice_runs_each_migration_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        TWO.apply(&mut conn).unwrap();
        TWO.apply(&mut conn).unwrap();
        assert_eq!(version(&conn), 2);
        conn.execute("INSERT INTO a (name) VALUES ('x')", [])
            .unwrap();
    }

    #[test]
    fn a_later_migration_applies_on_top_of_an_older_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        Migrations(&TWO.0[..1]).apply(&mut conn).unwrap();
        TWO.apply(&mut conn).unwrap();
        assert_eq!(version(&conn), 2);
    }

    #[test]
    fn a_failing_migration_leaves_the_schema_at_the_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let broken = Migrations(&[
            "CREATE TABLE a (id INTEGER PRIMARY KEY);",
            "CREATE TABLE b (id INTEGER); CREATE TABLE nope (;",
        ]);
        let err = broken.apply(&mut conn).unwrap_err();
        assert!(matches!(err, StoreError::Migration { version: 2, .. }));
        assert_eq!(version(&conn), 1);
        let b_exists: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'b'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(b_exists, 0);
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        TWO.apply(&mut conn).unwrap();
        let err = Migrations(&TWO.0[..1]).apply(&mut conn).unwrap_err();
        assert!(matches!(
            err,
            StoreError::SchemaTooNew { found: 2, known: 1 }
        ));
    }
}
