//! All SQL of the artifacts service. Functions take a connection so callers choose the
//! transaction; times are Unix milliseconds.

use verdict_contracts::artifacts::{ArtifactName, ArtifactNamePrefix};
use verdict_contracts::ids::{ArtifactId, ProjectId, RunId};
use verdict_store::rusqlite::types::Type;
use verdict_store::rusqlite::{self, params, Connection, OptionalExtension, Row};
use verdict_store::Migrations;

pub const MIGRATIONS: Migrations = Migrations(&[
    include_str!("../migrations/001_artifacts.sql"),
    include_str!("../migrations/002_artifacts_by_run_name.sql"),
    include_str!("../migrations/003_reports.sql"),
    // The table of idempotency keys, which every service that remembers answers shares.
    verdict_store::idempotency::MIGRATION,
]);

/// One artifact as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRow {
    pub id: ArtifactId,
    pub project_id: ProjectId,
    pub run_id: RunId,
    pub result_id: Option<String>,
    pub name: ArtifactName,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub state: String,
    pub object_key: String,
    pub upload_id: Option<String>,
    pub created_at: i64,
    pub completed_at: Option<i64>,
}

const COLUMNS: &str = "id, project_id, run_id, result_id, name, content_type, size, sha256, state, object_key, upload_id, created_at, completed_at";

fn artifact_row(row: &Row<'_>) -> rusqlite::Result<ArtifactRow> {
    Ok(ArtifactRow {
        id: row.get(0)?,
        project_id: row.get(1)?,
        run_id: row.get(2)?,
        result_id: row.get(3)?,
        name: ArtifactName::try_from(row.get::<_, String>(4)?)
            .map_err(|err| rusqlite::Error::FromSqlConversionFailure(4, Type::Text, err.into()))?,
        content_type: row.get(5)?,
        size: row.get::<_, i64>(6)?.max(0) as u64,
        sha256: row.get(7)?,
        state: row.get(8)?,
        object_key: row.get(9)?,
        upload_id: row.get(10)?,
        created_at: row.get(11)?,
        completed_at: row.get(12)?,
    })
}

/// The named secret, created with `make` on first use.
pub fn secret(
    conn: &Connection,
    name: &str,
    make: impl FnOnce() -> Vec<u8>,
) -> rusqlite::Result<Vec<u8>> {
    conn.execute(
        "INSERT INTO service_secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        params![name, make()],
    )?;
    conn.query_row(
        "SELECT value FROM service_secrets WHERE name = ?1",
        [name],
        |row| row.get(0),
    )
}

/// Adds `size` bytes to the project's usage unless that would pass `quota` (0: none);
/// `false` when refused.
pub fn reserve(
    conn: &Connection,
    project_id: ProjectId,
    size: u64,
    quota: u64,
) -> rusqlite::Result<bool> {
    let used: i64 = conn
        .query_row(
            "SELECT bytes FROM project_usage WHERE project_id = ?1",
            params![project_id],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let after = (used.max(0) as u64).saturating_add(size);
    if quota != 0 && after > quota {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO project_usage (project_id, bytes) VALUES (?1, ?2)
         ON CONFLICT (project_id) DO UPDATE SET bytes = bytes + excluded.bytes",
        params![project_id, size as i64],
    )?;
    Ok(true)
}

#[cfg(test)]
pub fn usage(conn: &Connection, project_id: ProjectId) -> rusqlite::Result<u64> {
    Ok(conn
        .query_row(
            "SELECT bytes FROM project_usage WHERE project_id = ?1",
            [project_id],
            |row| row.get::<_, i64>(0),
        )
        .optional()?
        .unwrap_or(0)
        .max(0) as u64)
}

pub fn insert(conn: &Connection, row: &ArtifactRow) -> rusqlite::Result<()> {
    conn.execute(
        &format!("INSERT INTO artifacts ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
        params![
            row.id,
            row.project_id,
            row.run_id,
            row.result_id,
            row.name.as_str(),
            row.content_type,
            row.size as i64,
            row.sha256,
            row.state,
            row.object_key,
            row.upload_id,
            row.created_at,
            row.completed_at
        ],
    )?;
    Ok(())
}

/// An artifact that is not being deleted.
/// Makes the artifact one of kind report.
pub fn mark_report(conn: &Connection, id: ArtifactId) -> rusqlite::Result<()> {
    conn.execute("INSERT INTO reports (artifact_id) VALUES (?1)", [id])?;
    Ok(())
}

pub fn is_report(conn: &Connection, id: ArtifactId) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM reports WHERE artifact_id = ?1")?
        .exists([id])
}

pub fn by_id(conn: &Connection, id: ArtifactId) -> rusqlite::Result<Option<ArtifactRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM artifacts WHERE id = ?1 AND state != 'deleted'"
    ))?
    .query_row([id], artifact_row)
    .optional()
}

/// A run's artifacts after `after` (an id), in id order (ids are UUIDv7: creation order).
pub fn list_by_run(
    conn: &Connection,
    run_id: RunId,
    after: &str,
    limit: u32,
) -> rusqlite::Result<Vec<ArtifactRow>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM artifacts
         WHERE run_id = ?1 AND id > ?2 AND state != 'deleted' ORDER BY id LIMIT ?3"
    ))?;
    let rows = statement.query_map(params![run_id, after, limit], artifact_row)?;
    rows.collect()
}

/// One range of `artifacts_by_run_name`: a run's artifacts after `(?2, ?3)` (name,
/// id) and before the name `?4`, in name and id order.
fn list_by_prefix_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM artifacts
         WHERE run_id = ?1 AND (name, id) > (?2, ?3) AND name < ?4 AND state != 'deleted'
         ORDER BY name, id LIMIT ?5"
    )
}

/// A run's artifacts whose names start with `prefix`, after the cursor `after` (name
/// and id of the last one seen; the prefix itself to start), in name and id order.
pub fn list_by_prefix(
    conn: &Connection,
    run_id: RunId,
    prefix: &ArtifactNamePrefix,
    after: (&str, &str),
    limit: u32,
) -> rusqlite::Result<Vec<ArtifactRow>> {
    let (after_name, after_id) = after.max((prefix.as_str(), ""));
    let mut statement = conn.prepare_cached(&list_by_prefix_sql())?;
    let rows = statement.query_map(
        params![run_id, after_name, after_id, prefix.upper_bound(), limit],
        artifact_row,
    )?;
    rows.collect()
}

/// The project of a run, known from any of its artifacts.
pub fn project_of_run(conn: &Connection, run_id: RunId) -> rusqlite::Result<Option<ProjectId>> {
    conn.prepare_cached("SELECT project_id FROM artifacts WHERE run_id = ?1 LIMIT 1")?
        .query_row([run_id], |row| row.get(0))
        .optional()
}

pub fn set_upload_id(conn: &Connection, id: ArtifactId, upload_id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE artifacts SET upload_id = ?2 WHERE id = ?1",
        params![id, upload_id],
    )?;
    Ok(())
}

/// Marks a pending artifact stored; `false` when it was not pending.
pub fn mark_stored(conn: &Connection, id: ArtifactId, now: i64) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE artifacts SET state = 'stored', completed_at = ?2, upload_id = NULL
         WHERE id = ?1 AND state = 'pending'",
        params![id, now],
    )? == 1)
}

/// Marks every live artifact of a run deleted and releases their bytes from the
/// project's usage. The blobs and rows are removed afterwards by [`deleted_batch`] and
/// [`remove`], so a crash in between only delays them.
pub fn mark_run_deleted(conn: &mut Connection, run_id: RunId, now: i64) -> rusqlite::Result<u64> {
    let tx = conn.transaction()?;
    tx.execute(
        "UPDATE project_usage SET bytes = max(0, bytes - (
            SELECT coalesce(sum(size), 0) FROM artifacts
            WHERE run_id = ?1 AND state != 'deleted' AND artifacts.project_id = project_usage.project_id))
         WHERE project_id IN (SELECT project_id FROM artifacts WHERE run_id = ?1 AND state != 'deleted')",
        [run_id],
    )?;
    let marked = tx.execute(
        "UPDATE artifacts SET state = 'deleted', deleted_at = ?2 WHERE run_id = ?1 AND state != 'deleted'",
        params![run_id, now],
    )?;
    tx.commit()?;
    Ok(marked as u64)
}

/// Marks pending artifacts declared before `cutoff` deleted (uploads never completed)
/// and releases their bytes; returns how many.
pub fn expire_pending(conn: &mut Connection, cutoff: i64, now: i64) -> rusqlite::Result<u64> {
    let tx = conn.transaction()?;
    tx.execute(
        "UPDATE project_usage SET bytes = max(0, bytes - (
            SELECT coalesce(sum(size), 0) FROM artifacts
            WHERE state = 'pending' AND created_at < ?1 AND artifacts.project_id = project_usage.project_id))
         WHERE project_id IN (SELECT project_id FROM artifacts WHERE state = 'pending' AND created_at < ?1)",
        [cutoff],
    )?;
    let marked = tx.execute(
        "UPDATE artifacts SET state = 'deleted', deleted_at = ?2 WHERE state = 'pending' AND created_at < ?1",
        params![cutoff, now],
    )?;
    tx.commit()?;
    Ok(marked as u64)
}

/// Rows marked deleted whose blobs may still exist: `(id, object_key, upload_id)`.
pub fn deleted_batch(
    conn: &Connection,
    limit: u32,
) -> rusqlite::Result<Vec<(ArtifactId, String, Option<String>)>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, object_key, upload_id FROM artifacts WHERE state = 'deleted' ORDER BY created_at LIMIT ?1",
    )?;
    let rows = statement.query_map([limit], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    rows.collect()
}

/// Forgets rows whose blobs are gone.
pub fn remove(conn: &mut Connection, ids: &[ArtifactId]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut statement =
            tx.prepare_cached("DELETE FROM artifacts WHERE id = ?1 AND state = 'deleted'")?;
        for id in ids {
            statement.execute([id])?;
        }
    }
    tx.commit()
}

/// Which of `keys` no row refers to (blobs left behind).
pub fn unknown_keys(conn: &Connection, keys: &[String]) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare_cached("SELECT 1 FROM artifacts WHERE object_key = ?1")?;
    let mut unknown = Vec::new();
    for key in keys {
        if !statement.exists([key])? {
            unknown.push(key.clone());
        }
    }
    Ok(unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        MIGRATIONS.in_memory().unwrap()
    }

    fn plan(conn: &Connection, sql: &str) -> String {
        verdict_store::query_plan(conn, sql).unwrap()
    }

    /// The run most tests store their artifacts in.
    /// The project every test's artifacts belong to.
    fn the_project() -> ProjectId {
        "0192a24d-0000-7000-8000-0000000000ff".parse().unwrap()
    }

    fn the_run() -> RunId {
        "0192a24d-0000-7000-8000-000000000001".parse().unwrap()
    }

    /// The `n`th artifact id: ids sort as their numbers do.
    fn artifact(n: u8) -> ArtifactId {
        format!("0192a24d-0000-7000-8000-{n:012x}").parse().unwrap()
    }

    fn row(id: ArtifactId, run: RunId, size: u64, created_at: i64) -> ArtifactRow {
        named(id, run, "a.txt", size, created_at)
    }

    fn named(id: ArtifactId, run: RunId, name: &str, size: u64, created_at: i64) -> ArtifactRow {
        ArtifactRow {
            id,
            project_id: the_project(),
            run_id: run,
            result_id: None,
            name: ArtifactName::try_from(name.to_owned()).unwrap(),
            content_type: "text/plain".into(),
            size,
            sha256: "0".repeat(64),
            state: "pending".into(),
            object_key: format!("k-{id}"),
            upload_id: None,
            created_at,
            completed_at: None,
        }
    }

    #[test]
    fn a_runs_artifacts_are_listed_from_their_index() {
        let plan = plan(
            &conn(),
            "SELECT id FROM artifacts WHERE run_id = 'r' AND id > '' AND state != 'deleted' ORDER BY id LIMIT 10",
        );
        assert!(plan.contains("artifacts_by_run"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn a_runs_artifacts_under_a_prefix_are_one_range_of_the_name_index() {
        let plan = plan(&conn(), &list_by_prefix_sql());
        assert!(plan.contains("artifacts_by_run_name"), "{plan}");
        assert!(plan.contains("(name,id)>(?,?) AND name<?"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn prefix_lists_page_by_name_and_id_and_keep_to_the_prefix() {
        let mut conn = conn();
        for (id, name) in [
            (artifact(1), "screens/b.png"),
            (artifact(2), "screens/a.png"),
            (artifact(3), "screensaver.png"),
            (artifact(4), "screens/a.png"),
            (artifact(5), "logs/screens/x.png"),
            (artifact(6), "screens/sub/c.png"),
        ] {
            insert(&conn, &named(id, the_run(), name, 1, 1)).unwrap();
        }
        insert(
            &conn,
            &named(artifact(7), RunId::generate(), "screens/a.png", 1, 1),
        )
        .unwrap();
        let prefix = ArtifactNamePrefix::try_from("screens/".to_owned()).unwrap();
        let ids = |rows: Vec<ArtifactRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let first = list_by_prefix(&conn, the_run(), &prefix, ("", ""), 2).unwrap();
        assert_eq!(ids(first.clone()), [artifact(2), artifact(4)]);
        let last = first.last().unwrap();
        let rest = list_by_prefix(
            &conn,
            the_run(),
            &prefix,
            (last.name.as_str(), &last.id.to_string()),
            10,
        );
        assert_eq!(ids(rest.unwrap()), [artifact(1), artifact(6)]);
        mark_run_deleted(&mut conn, the_run(), 5).unwrap();
        assert!(list_by_prefix(&conn, the_run(), &prefix, ("", ""), 10)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_sweeper_finds_deleted_and_stale_rows_through_the_state_index() {
        let conn = conn();
        let deleted = plan(
            &conn,
            "SELECT id FROM artifacts WHERE state = 'deleted' ORDER BY created_at LIMIT 10",
        );
        assert!(deleted.contains("artifacts_by_state"), "{deleted}");
        assert!(!deleted.contains("TEMP B-TREE"), "{deleted}");
        let stale = plan(
            &conn,
            "SELECT id FROM artifacts WHERE state = 'pending' AND created_at < 5",
        );
        assert!(stale.contains("artifacts_by_state"), "{stale}");
    }

    #[test]
    fn the_quota_refuses_what_would_pass_it_and_deletion_gives_it_back() {
        let mut conn = conn();
        assert!(reserve(&conn, the_project(), 60, 100).unwrap());
        insert(&conn, &row(artifact(1), the_run(), 60, 1)).unwrap();
        assert!(!reserve(&conn, the_project(), 50, 100).unwrap());
        assert!(reserve(&conn, the_project(), 40, 100).unwrap());
        insert(&conn, &row(artifact(2), RunId::generate(), 40, 1)).unwrap();
        assert_eq!(usage(&conn, the_project()).unwrap(), 100);
        assert_eq!(mark_run_deleted(&mut conn, the_run(), 2).unwrap(), 1);
        assert_eq!(usage(&conn, the_project()).unwrap(), 40);
        // Deleting again changes nothing.
        assert_eq!(mark_run_deleted(&mut conn, the_run(), 3).unwrap(), 0);
        assert_eq!(usage(&conn, the_project()).unwrap(), 40);
        assert!(by_id(&conn, artifact(1)).unwrap().is_none());
        let batch = deleted_batch(&conn, 10).unwrap();
        assert_eq!(batch.len(), 1);
        remove(&mut conn, &[batch[0].0]).unwrap();
        assert!(deleted_batch(&conn, 10).unwrap().is_empty());
    }

    #[test]
    fn only_stale_pending_uploads_expire() {
        let mut conn = conn();
        let (old, new, done) = (artifact(1), artifact(2), artifact(3));
        insert(&conn, &row(old, the_run(), 1, 10)).unwrap();
        insert(&conn, &row(new, the_run(), 1, 100)).unwrap();
        let mut stored = row(done, the_run(), 1, 10);
        stored.state = "stored".into();
        insert(&conn, &stored).unwrap();
        assert_eq!(expire_pending(&mut conn, 50, 200).unwrap(), 1);
        assert!(by_id(&conn, old).unwrap().is_none());
        assert!(by_id(&conn, new).unwrap().is_some());
        assert!(by_id(&conn, done).unwrap().is_some());
    }

    #[test]
    fn lists_page_by_id_and_hide_deleted_artifacts() {
        let mut conn = conn();
        for id in [artifact(1), artifact(2), artifact(3)] {
            insert(&conn, &row(id, the_run(), 1, 1)).unwrap();
        }
        let first = list_by_run(&conn, the_run(), "", 2).unwrap();
        assert_eq!(
            first.iter().map(|r| r.id).collect::<Vec<_>>(),
            [artifact(1), artifact(2)]
        );
        let rest = list_by_run(&conn, the_run(), &artifact(2).to_string(), 2).unwrap();
        assert_eq!(rest.len(), 1);
        mark_run_deleted(&mut conn, the_run(), 5).unwrap();
        assert!(list_by_run(&conn, the_run(), "", 10).unwrap().is_empty());
    }

    #[test]
    fn the_secret_is_made_once() {
        let conn = conn();
        let first = secret(&conn, "url", || vec![1, 2, 3]).unwrap();
        let second = secret(&conn, "url", || vec![9]).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn unknown_keys_are_the_ones_without_a_row() {
        let conn = conn();
        insert(&conn, &row(artifact(1), the_run(), 1, 1)).unwrap();
        let unknown = unknown_keys(&conn, &[format!("k-{}", artifact(1)), "k-zz".into()]).unwrap();
        assert_eq!(unknown, vec!["k-zz".to_owned()]);
    }
}
