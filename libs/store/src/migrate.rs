use rusqlite::{Connection, OptionalExtension};

use crate::StoreError;

/// A service's schema history: each entry is one migration (any number of statements),
/// applied once, in order, inside a transaction. The applied count lives in SQLite's
/// `user_version`, so migrations never run twice and never need a table of their own.
/// Append only: editing a released migration would leave existing databases behind.
///
/// Foreign keys are not enforced while a migration runs, and checked before it commits:
/// SQLite's procedure for schema changes, which lets a migration rebuild a table other
/// tables refer to (dropping it would otherwise delete or orphan their rows).
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
        if found == known {
            return Ok(());
        }
        // The pragma does nothing inside a transaction, so it is set around them.
        let enforced: bool = conn.pragma_query_value(None, "foreign_keys", |row| row.get(0))?;
        conn.pragma_update(None, "foreign_keys", false)?;
        let applied = self.apply_from(conn, found);
        conn.pragma_update(None, "foreign_keys", enforced)?;
        applied
    }

    fn apply_from(&self, conn: &mut Connection, found: usize) -> Result<(), StoreError> {
        for (index, sql) in self.0.iter().enumerate().skip(found) {
            let version = index + 1;
            let tx = conn.transaction()?;
            tx.execute_batch(sql)
                .and_then(|()| dangling_reference(&tx))
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

/// Fails when a row refers to one that does not exist, naming the table.
fn dangling_reference(conn: &Connection) -> rusqlite::Result<()> {
    let dangling: Option<String> = conn
        .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
        .optional()?;
    match dangling {
        None => Ok(()),
        Some(table) => Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
            Some(format!(
                "a row of {table} refers to a row that does not exist"
            )),
        )),
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

    const PARENT_AND_CHILD: &str = "
        CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT UNIQUE);
        CREATE TABLE child (parent INTEGER NOT NULL REFERENCES parent (id) ON DELETE CASCADE);
        INSERT INTO parent VALUES (1, 'a');
        INSERT INTO child VALUES (1);";

    #[test]
    fn a_migration_may_rebuild_a_table_others_refer_to() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        Migrations(&[
            PARENT_AND_CHILD,
            "CREATE TABLE parent_new (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO parent_new SELECT id, name FROM parent;
             DROP TABLE parent;
             ALTER TABLE parent_new RENAME TO parent;",
        ])
        .apply(&mut conn)
        .unwrap();
        let children: i64 = conn
            .query_row(
                "SELECT count(*) FROM child JOIN parent ON parent.id = child.parent",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(children, 1);
        let enforced: bool = conn
            .pragma_query_value(None, "foreign_keys", |row| row.get(0))
            .unwrap();
        assert!(enforced);
    }

    #[test]
    fn a_migration_that_leaves_a_dangling_reference_is_rolled_back() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        let err = Migrations(&[PARENT_AND_CHILD, "DELETE FROM parent;"])
            .apply(&mut conn)
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Migration { version: 2, .. })
                && err.to_string().contains("child"),
            "{err}"
        );
        assert_eq!(version(&conn), 1);
        let parents: i64 = conn
            .query_row("SELECT count(*) FROM parent", [], |row| row.get(0))
            .unwrap();
        assert_eq!(parents, 1);
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
