//! Imports: a report's way from accepted to done, queued and retried.

use verdict_contracts::ids::{ArtifactId, ImportId, ProjectId, RunId};
use verdict_contracts::runs::{ImportState, ReportKind};
use verdict_store::rusqlite::{self, params, Connection, OptionalExtension, Row};

use super::parsed;

#[derive(Debug, Clone)]
pub struct ImportRow {
    pub id: ImportId,
    pub run_id: RunId,
    pub project_id: ProjectId,
    pub format: ReportKind,
    pub status: ImportState,
    pub error: Option<String>,
    /// JSON of the counts, once done.
    pub counts: Option<String>,
    /// JSON array of what the import noticed without refusing the report.
    pub warnings: Option<String>,
    pub artifact_id: Option<ArtifactId>,
    /// Attempts made so far.
    pub attempts: u32,
    /// When a queued import is to be tried (again).
    pub next_attempt_at: Option<i64>,
    /// Into an existing run (whose other results stay), rather than into a run of its own.
    pub into_run: bool,
}

pub(super) const IMPORT_COLUMNS: &str = "id, run_id, project_id, format, status, error, counts, \
     artifact_id, attempts, next_attempt_at, warnings, into_run";

fn import_row(row: &Row<'_>) -> rusqlite::Result<ImportRow> {
    Ok(ImportRow {
        id: parsed(row, 0)?,
        run_id: row.get(1)?,
        project_id: row.get(2)?,
        format: parsed(row, 3)?,
        status: parsed(row, 4)?,
        error: row.get(5)?,
        counts: row.get(6)?,
        artifact_id: row.get(7)?,
        attempts: row.get(8)?,
        next_attempt_at: row.get(9)?,
        warnings: row.get(10)?,
        into_run: row.get(11)?,
    })
}

pub fn insert_import(conn: &Connection, import: &ImportRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO imports (id, run_id, project_id, format, status, into_run)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
        params![
            import.id.to_string(),
            import.run_id,
            import.project_id,
            import.format.as_str(),
            import.into_run
        ],
    )?;
    Ok(())
}

pub fn import(conn: &Connection, id: ImportId) -> rusqlite::Result<Option<ImportRow>> {
    conn.prepare_cached(&format!(
        "SELECT {IMPORT_COLUMNS} FROM imports WHERE id = ?1"
    ))?
    .query_row([id.to_string()], import_row)
    .optional()
}

/// Queues a pending import, due at once: its report is stored as `artifact_id`.
pub fn queue_import(
    conn: &Connection,
    id: ImportId,
    artifact_id: ArtifactId,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE imports SET artifact_id = ?2, queued_at = ?3, next_attempt_at = ?3
         WHERE id = ?1 AND status = 'pending' AND artifact_id IS NULL",
        params![id.to_string(), artifact_id, now],
    )? == 1)
}

/// The queued import due first (possibly not yet due).
pub fn next_queued_import(conn: &Connection) -> rusqlite::Result<Option<ImportRow>> {
    conn.prepare_cached(&format!(
        "SELECT {IMPORT_COLUMNS} FROM imports
         WHERE status = 'pending' AND artifact_id IS NOT NULL ORDER BY next_attempt_at LIMIT 1"
    ))?
    .query_row([], import_row)
    .optional()
}

/// Counts an attempt of a pending import and schedules the next one, should this one
/// not end it; `false` when the import is no longer pending.
pub fn begin_import_attempt(
    conn: &Connection,
    id: ImportId,
    retry_at: i64,
) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE imports SET attempts = attempts + 1, next_attempt_at = ?2
         WHERE id = ?1 AND status = 'pending'",
        params![id.to_string(), retry_at],
    )? == 1)
}

pub fn end_import(
    conn: &Connection,
    id: ImportId,
    status: ImportState,
    error: Option<&str>,
    counts: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE imports SET status = ?2, error = ?3, counts = ?4 WHERE id = ?1",
        params![id.to_string(), status.as_str(), error, counts],
    )?;
    Ok(())
}

/// Keeps what an import noticed in its report without refusing it.
pub fn set_import_warnings(
    conn: &Connection,
    id: ImportId,
    warnings: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE imports SET warnings = ?2 WHERE id = ?1",
        params![id.to_string(), warnings],
    )?;
    Ok(())
}

/// Imports into the run (not the import that created it) still to be done.
pub fn pending_imports_into(conn: &Connection, run_id: RunId) -> rusqlite::Result<u32> {
    conn.prepare_cached(
        "SELECT count(*) FROM imports WHERE run_id = ?1 AND status = 'pending' AND into_run",
    )?
    .query_row([run_id], |row| row.get(0))
}

#[cfg(test)]
mod tests {
    use verdict_store::rusqlite::Connection;
    use verdict_store::Migrations;

    use super::*;
    use crate::store::tests::assert_index_scan;
    use crate::store::*;

    #[test]
    fn the_import_queue_is_read_from_its_index() {
        assert_index_scan(
            &format!("SELECT {IMPORT_COLUMNS} FROM imports WHERE status = 'pending' AND artifact_id IS NOT NULL ORDER BY next_attempt_at LIMIT 1"),
            "imports_due",
        );
    }

    #[test]
    fn an_import_queued_before_retries_existed_is_due_when_it_was_queued() {
        let mut conn = Connection::open_in_memory().unwrap();
        Migrations(&MIGRATIONS.0[..3]).apply(&mut conn).unwrap();
        conn.execute_batch(
            r#"INSERT INTO imports (id, run_id, project_id, format, status, artifact_id, principal, queued_at)
               VALUES ('01a24dd3-1a36-742d-af3e-72998a5a73e1', '0192a24d-0000-7000-8000-000000000001', '0192a24d-0000-7000-8000-0000000000ff', 'junit', 'pending', '0192a24d-0000-7000-8000-00000000000a', '{"type":"user"}', 1234)"#,
        )
        .unwrap();
        MIGRATIONS.apply(&mut conn).unwrap();

        let queued = next_queued_import(&conn).unwrap().unwrap();
        assert_eq!(
            (
                queued.id.to_string(),
                queued.attempts,
                queued.next_attempt_at
            ),
            (
                "01a24dd3-1a36-742d-af3e-72998a5a73e1".to_owned(),
                0,
                Some(1234)
            )
        );
    }

    #[test]
    fn pending_imports_into_a_run_are_counted_from_the_run_index() {
        assert_index_scan(
            "SELECT count(*) FROM imports WHERE run_id = ?1 AND status = 'pending' AND into_run",
            "imports_by_run",
        );
    }
}
