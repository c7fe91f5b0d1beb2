//! The text index of results (FTS5 over name and message) in a database file of its own,
//! attached as `text_index`. The writer only notes which results changed, a range at a
//! time, in `text_queue` (migrations 014 and 015); the indexer's own connection takes
//! the notes in order, and its position among them is stored with the index, so a pass
//! either happened whole or not at all. The index derives from the results: a file that
//! is missing, of another version, or ahead of the notes (the runs database was restored
//! from a backup, or lost its last commits to a power failure) is rebuilt from them.

use verdict_store::rusqlite::{self, Connection, OptionalExtension, Transaction};

/// The schema name the text index's file is attached under.
pub const SCHEMA: &str = "text_index";

/// The index's layout; a file of another one is emptied and rebuilt.
const VERSION: i64 = 1;

/// Notes a range of results (`?1` to `?2`, by seq) for the indexer, with a
/// [`NoteKind`] (`?3`).
pub const NOTE: &str = "INSERT INTO text_queue (first, last, kind) VALUES (?1, ?2, ?3)";

/// What the indexer does with a note's range of results, as stored in `text_queue.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// The results are new: their text is indexed.
    Index = 0,
    /// The results changed: the text indexed for them is replaced by their text now.
    Replace = 1,
    /// The results are gone: the text indexed for them is removed.
    Remove = 2,
}

impl rusqlite::types::FromSql for NoteKind {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        match value.as_i64()? {
            0 => Ok(Self::Index),
            1 => Ok(Self::Replace),
            2 => Ok(Self::Remove),
            other => Err(rusqlite::types::FromSqlError::OutOfRange(other)),
        }
    }
}

impl rusqlite::ToSql for NoteKind {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok((*self as i64).into())
    }
}

/// Creates the index's tables in the attached file unless they are there at this
/// version.
pub fn prepare(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let version: i64 = tx.query_row("PRAGMA text_index.user_version", [], |row| row.get(0))?;
    if version != VERSION {
        tx.execute_batch(
            "DROP TABLE IF EXISTS text_index.results_text;
             DROP TABLE IF EXISTS text_index.position;
             CREATE VIRTUAL TABLE text_index.results_text USING fts5 (
                 name, message, content='', contentless_delete=1, tokenize='unicode61');
             CREATE TABLE text_index.position (
                 only INTEGER PRIMARY KEY CHECK (only = 1),
                 through INTEGER NOT NULL
             );",
        )?;
        tx.pragma_update(Some(SCHEMA), "user_version", VERSION)?;
    }
    tx.commit()
}

/// What one pass of the indexer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// The last note taken, which the writer may now forget (with those before it).
    pub through: i64,
    /// Results the notes taken in this pass covered.
    pub results: u64,
    /// Results noted after `through`, left for the next pass.
    pub waiting: u64,
    /// The whole index was rebuilt from the results first.
    pub rebuilt: bool,
}

/// Takes notes after the index's position until they cover `limit` results (at least
/// one note), in one transaction that writes only the index's file.
pub fn index_queued(conn: &mut Connection, limit: u64) -> rusqlite::Result<Pass> {
    let tx = conn.transaction()?;
    // The index file's write lock first: during an upgrade another instance indexes
    // too, and the position read next must be the one this pass moves on from.
    tx.execute("UPDATE text_index.position SET through = through", [])?;
    let position: Option<i64> = tx
        .query_row("SELECT through FROM text_index.position", [], |row| {
            row.get(0)
        })
        .optional()?;
    let newest: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM text_queue", [], |row| {
        row.get(0)
    })?;
    let (from, rebuilt) = match position {
        Some(through) if through <= newest => (through, false),
        _ => {
            rebuild(&tx)?;
            (newest, true)
        }
    };
    let (through, results) = index_notes(&tx, from, limit)?;
    tx.execute(
        "INSERT INTO text_index.position (only, through) VALUES (1, ?1)
         ON CONFLICT (only) DO UPDATE SET through = excluded.through",
        [through],
    )?;
    let waiting: i64 = tx.query_row(
        "SELECT coalesce(sum(last - first + 1), 0) FROM text_queue WHERE id > ?1",
        [through],
        |row| row.get(0),
    )?;
    tx.commit()?;
    Ok(Pass {
        through,
        results,
        waiting: waiting.max(0) as u64,
        rebuilt,
    })
}

/// Empties the index and indexes every result, as of the transaction's snapshot.
fn rebuild(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "INSERT INTO text_index.results_text (results_text) VALUES ('delete-all');
         INSERT INTO text_index.results_text (rowid, name, message)
         SELECT seq, name, message FROM results;",
    )
}

/// Applies the notes after `from` until they cover `limit` results; the last note
/// applied and the results its notes covered.
fn index_notes(tx: &Transaction<'_>, from: i64, limit: u64) -> rusqlite::Result<(i64, u64)> {
    let mut notes =
        tx.prepare("SELECT id, first, last, kind FROM text_queue WHERE id > ?1 ORDER BY id")?;
    let mut remove =
        tx.prepare("DELETE FROM text_index.results_text WHERE rowid BETWEEN ?1 AND ?2")?;
    // Results deleted since they were noted have no text left to index.
    let mut index = tx.prepare(
        "INSERT INTO text_index.results_text (rowid, name, message)
         SELECT seq, name, message FROM results WHERE seq BETWEEN ?1 AND ?2",
    )?;
    let mut rows = notes.query([from])?;
    let (mut through, mut covered) = (from, 0);
    while covered < limit {
        let Some(row) = rows.next()? else { break };
        let (first, last): (i64, i64) = (row.get(1)?, row.get(2)?);
        match row.get::<_, NoteKind>(3)? {
            NoteKind::Index => {
                index.execute([first, last])?;
            }
            NoteKind::Replace => {
                remove.execute([first, last])?;
                index.execute([first, last])?;
            }
            NoteKind::Remove => {
                remove.execute([first, last])?;
            }
        }
        through = row.get(0)?;
        covered += u64::try_from(last - first + 1).unwrap_or(0);
    }
    Ok((through, covered))
}

/// Forgets the notes up to `through`, except the newest, which keeps the notes' count
/// from going back (an index whose position is past the newest note is rebuilt).
pub fn forget_indexed(conn: &Connection, through: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM text_queue WHERE id <= ?1 AND id < (SELECT max(id) FROM text_queue)",
        [through],
    )
}

#[cfg(test)]
mod tests {
    use verdict_store::rusqlite::Connection;

    use super::*;
    use crate::domain::ResultStatus;
    use crate::store::tests::{conn, ids, index_text, new_run, result, text};
    use crate::store::{clear_run, delete_run, KnownTests, ResultWriter, RunRow};

    /// Stores results as the writer does, without indexing them.
    fn write(conn: &mut Connection, run: &RunRow, results: &[(&str, &str, Option<&str>)]) {
        let tx = conn.transaction().unwrap();
        {
            let known = KnownTests::default();
            let mut writer = ResultWriter::new(&tx, &known).unwrap();
            for (id, name, message) in results {
                let row = result(id, name, ResultStatus::Failed, *message);
                let test = writer.test(run, &row.test_key, None, name).unwrap();
                writer.upsert(run, test, &row).unwrap();
            }
            writer.finish().unwrap();
        }
        tx.commit().unwrap();
    }

    /// Entries of the index matching `words`, however many results they name.
    fn indexed(conn: &Connection, words: &str) -> i64 {
        conn.query_row(
            "SELECT count(*) FROM text_index.results_text WHERE results_text MATCH ?1",
            [words],
            |row| row.get(0),
        )
        .unwrap()
    }

    fn notes(conn: &Connection) -> Vec<i64> {
        let mut statement = conn
            .prepare("SELECT id FROM text_queue ORDER BY id")
            .unwrap();
        let ids = statement.query_map([], |row| row.get(0)).unwrap();
        ids.collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn a_stored_result_is_found_by_its_text_once_the_indexer_took_its_note() {
        let mut conn = conn();
        let run = new_run(&mut conn);
        write(&mut conn, &run, &[("x", "login works", Some("timeout"))]);
        assert!(ids(&conn, run.rid, &text("timeout")).is_empty());

        let pass = index_queued(&mut conn, 100).unwrap();

        assert_eq!((pass.results, pass.rebuilt), (1, false));
        assert_eq!(ids(&conn, run.rid, &text("timeout")), ["x"]);
        assert_eq!(ids(&conn, run.rid, &text("login")), ["x"]);
    }

    #[test]
    fn the_results_a_transaction_stored_in_a_run_are_one_note() {
        let mut conn = conn();
        let run = new_run(&mut conn);
        let other = new_run(&mut conn);
        let tx = conn.transaction().unwrap();
        {
            let known = KnownTests::default();
            let mut writer = ResultWriter::new(&tx, &known).unwrap();
            for (run, id) in [(&run, "a"), (&other, "b"), (&run, "c"), (&other, "d")] {
                let row = result(id, id, ResultStatus::Passed, None);
                let test = writer.test(run, &row.test_key, None, id).unwrap();
                writer.upsert(run, test, &row).unwrap();
            }
            writer.finish().unwrap();
        }
        tx.commit().unwrap();

        assert_eq!(notes(&conn).len(), 2);
        assert_eq!(index_queued(&mut conn, 100).unwrap().results, 4);
        assert_eq!(ids(&conn, other.rid, &text("d")), ["d"]);
    }

    #[test]
    fn a_pass_takes_notes_until_they_cover_its_limit_and_the_next_goes_on_from_there() {
        let mut conn = conn();
        let run = new_run(&mut conn);
        for (id, name) in [("a", "alpha"), ("b", "beta"), ("c", "gamma")] {
            write(&mut conn, &run, &[(id, name, None)]);
        }

        let first = index_queued(&mut conn, 2).unwrap();
        assert_eq!((first.results, first.waiting), (2, 1));
        assert!(ids(&conn, run.rid, &text("gamma")).is_empty());
        let second = index_queued(&mut conn, 2).unwrap();

        assert_eq!((second.results, second.waiting), (1, 0));
        assert!(second.through > first.through);
        assert_eq!(ids(&conn, run.rid, &text("gamma")), ["c"]);
        assert_eq!(index_queued(&mut conn, 2).unwrap().results, 0);
    }

    #[test]
    fn a_result_changed_in_the_transaction_that_stored_it_is_indexed_once_by_its_last_text() {
        let mut conn = conn();
        let run = new_run(&mut conn);
        write(
            &mut conn,
            &run,
            &[("x", "a", Some("timeout")), ("x", "a", Some("recovered"))],
        );

        index_text(&mut conn);

        assert_eq!(notes(&conn).len(), 1);
        assert!(ids(&conn, run.rid, &text("timeout")).is_empty());
        assert_eq!(indexed(&conn, "recovered"), 1);
    }

    #[test]
    fn a_result_changed_before_its_first_note_was_taken_is_found_by_its_new_text_only() {
        let mut conn = conn();
        let run = new_run(&mut conn);
        write(&mut conn, &run, &[("x", "a", Some("timeout"))]);
        write(&mut conn, &run, &[("x", "a", Some("recovered"))]);

        index_text(&mut conn);

        assert!(ids(&conn, run.rid, &text("timeout")).is_empty());
        assert_eq!(ids(&conn, run.rid, &text("recovered")), ["x"]);
    }

    #[test]
    fn a_deleted_runs_results_leave_the_index() {
        let mut conn = conn();
        let run = new_run(&mut conn);
        write(&mut conn, &run, &[("x", "a", Some("timeout"))]);
        index_text(&mut conn);
        let tx = conn.transaction().unwrap();
        delete_run(&tx, run.id).unwrap();
        tx.commit().unwrap();

        index_text(&mut conn);

        assert_eq!(indexed(&conn, "timeout"), 0);
    }

    #[test]
    fn results_deleted_before_the_indexer_took_their_note_are_never_indexed() {
        let mut conn = conn();
        let run = new_run(&mut conn);
        write(&mut conn, &run, &[("x", "a", Some("timeout"))]);
        let tx = conn.transaction().unwrap();
        delete_run(&tx, run.id).unwrap();
        tx.commit().unwrap();

        let pass = index_queued(&mut conn, 100).unwrap();

        assert_eq!((pass.results, pass.waiting), (2, 0));
        assert_eq!(indexed(&conn, "timeout"), 0);
    }

    #[test]
    fn a_cleared_run_filled_again_is_found_by_the_new_results_text_only() {
        let mut conn = conn();
        let run = new_run(&mut conn);
        write(
            &mut conn,
            &run,
            &[("x", "a", Some("timeout")), ("y", "b", Some("refused"))],
        );
        let tx = conn.transaction().unwrap();
        clear_run(&tx, &run).unwrap();
        tx.commit().unwrap();
        // The new results take the cleared ones' places in the run's range.
        write(&mut conn, &run, &[("z", "c", Some("overflow"))]);

        index_text(&mut conn);

        assert!(ids(&conn, run.rid, &text("timeout")).is_empty());
        assert!(ids(&conn, run.rid, &text("refused")).is_empty());
        assert_eq!(ids(&conn, run.rid, &text("overflow")), ["z"]);
        assert_eq!(indexed(&conn, "overflow"), 1);
    }

    #[test]
    fn the_writer_forgets_taken_notes_but_the_newest() {
        let mut conn = conn();
        let run = new_run(&mut conn);
        for (id, name) in [("a", "alpha"), ("b", "beta"), ("c", "gamma")] {
            write(&mut conn, &run, &[(id, name, None)]);
        }
        let taken = notes(&conn);
        let pass = index_queued(&mut conn, 2).unwrap();

        assert_eq!(forget_indexed(&conn, pass.through).unwrap(), 2);
        assert_eq!(notes(&conn), taken[2..]);
        let pass = index_queued(&mut conn, 2).unwrap();
        assert_eq!(forget_indexed(&conn, pass.through).unwrap(), 0);
        assert_eq!(notes(&conn), taken[2..]);
    }

    #[test]
    fn an_index_without_a_position_is_rebuilt_from_the_stored_results() {
        let mut conn = conn();
        let run = new_run(&mut conn);
        write(&mut conn, &run, &[("x", "a", Some("timeout"))]);
        index_text(&mut conn);
        // A new, empty index file: as after an upgrade, or when the file was removed.
        conn.execute_batch("DETACH DATABASE text_index").unwrap();
        crate::store::tests::attach_text_index(&mut conn);
        write(&mut conn, &run, &[("y", "b", Some("refused"))]);

        let pass = index_queued(&mut conn, 100).unwrap();

        assert!(pass.rebuilt);
        assert_eq!(ids(&conn, run.rid, &text("timeout")), ["x"]);
        assert_eq!(ids(&conn, run.rid, &text("refused")), ["y"]);
        index_text(&mut conn);
        assert_eq!(ids(&conn, run.rid, &text("refused")), ["y"], "indexed once");
    }

    #[test]
    fn an_index_ahead_of_the_notes_is_rebuilt_from_the_stored_results() {
        let mut conn = conn();
        let run = new_run(&mut conn);
        write(&mut conn, &run, &[("x", "a", Some("timeout"))]);
        index_text(&mut conn);
        // The runs database lost its last commits, or was restored from a backup: its
        // results and notes are older than the index.
        conn.execute_batch(
            "UPDATE text_index.position SET through = through + 10;
             DELETE FROM results;
             DELETE FROM text_queue;",
        )
        .unwrap();
        write(&mut conn, &run, &[("y", "b", Some("refused"))]);

        let pass = index_queued(&mut conn, 100).unwrap();

        assert!(pass.rebuilt);
        assert!(ids(&conn, run.rid, &text("timeout")).is_empty());
        assert_eq!(ids(&conn, run.rid, &text("refused")), ["y"]);
    }

    #[test]
    fn an_index_of_another_version_is_emptied_and_rebuilt() {
        let mut conn = conn();
        let run = new_run(&mut conn);
        write(&mut conn, &run, &[("x", "a", Some("timeout"))]);
        index_text(&mut conn);
        conn.pragma_update(Some(SCHEMA), "user_version", VERSION + 1)
            .unwrap();

        prepare(&mut conn).unwrap();

        assert!(index_queued(&mut conn, 100).unwrap().rebuilt);
        assert_eq!(ids(&conn, run.rid, &text("timeout")), ["x"]);
    }
}
