//! Copies of a live database, and putting one back.
//!
//! A backup is readable by its owner only (0600): it holds everything the service does.
//! A backup is `VACUUM INTO` on a read connection: one read transaction, so the copy is
//! exactly the database as of one commit, taken while the service keeps writing (WAL
//! readers do not block the writer). A restore goes through SQLite's online backup
//! API into the target file, so the WAL and locks are handled by SQLite rather than by
//! copying files under it.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

/// How long a backup or restore waits for a lock held by the running service.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes a consistent copy of the database at `database` to `out` and checks it.
/// `out` must not exist; the copy appears there only once complete and synced.
/// Returns the size of the copy in bytes.
pub fn backup(database: &Path, out: &Path) -> Result<u64, StoreError> {
    if out.exists() {
        return Err(StoreError::BackupExists(out.display().to_string()));
    }
    let partial = out.with_extension("partial");
    remove_if_present(&partial)?;
    let io = |source| StoreError::Io {
        path: partial.display().to_string(),
        source,
    };
    // The copy holds everything the service keeps (hashes, keys): it is created empty
    // and private first, and VACUUM INTO fills it in place.
    create_private(&partial).map_err(io)?;
    let source = open(database, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let target = partial.to_str().ok_or_else(|| StoreError::Path {
        path: partial.display().to_string(),
    })?;
    source.execute("VACUUM INTO ?1", [target])?;
    drop(source);
    File::open(&partial)
        .and_then(|file| file.sync_all())
        .map_err(io)?;
    integrity_check(&partial)?;
    std::fs::rename(&partial, out).map_err(io)?;
    if let Some(dir) = out.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        File::open(dir).and_then(|dir| dir.sync_all()).map_err(io)?;
    }
    std::fs::metadata(out).map(|meta| meta.len()).map_err(io)
}

/// Creates an empty file only its owner may read and write (0600 on Unix, whatever the
/// umask).
fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = options.mode(0o600).open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

/// Replaces the content of the database at `database` (created if missing) with the
/// backup at `backup`, after checking the backup. Stop the owning service first: it
/// would otherwise keep caches of the data it had.
pub fn restore(backup: &Path, database: &Path) -> Result<(), StoreError> {
    integrity_check(backup)?;
    let source = open(backup, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    if let Some(dir) = database.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let mut target = open(
        database,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    target.pragma_update(None, "journal_mode", "WAL")?;
    copy_all_pages(&source, &mut target)?;
    target.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

/// Removes a database file with its WAL and shared-memory files; none of them existing
/// is no error.
pub fn remove_database(path: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        match std::fs::remove_file(&file) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
    }
    Ok(())
}

/// Copies every page in one step, under one lock, so no reader of the target sees half
/// a restore; waits while another connection holds the target locked.
fn copy_all_pages(source: &Connection, target: &mut Connection) -> Result<(), StoreError> {
    use rusqlite::backup::{Backup, StepResult};
    let copy = Backup::new(source, target)?;
    let started = std::time::Instant::now();
    loop {
        match copy.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::Busy | StepResult::Locked if started.elapsed() > BUSY_TIMEOUT => {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some("the database stayed locked during the restore".into()),
                )
                .into())
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// `PRAGMA integrity_check` of the database at `path`: an error naming the problems
/// unless SQLite answers `ok`.
pub fn integrity_check(path: &Path) -> Result<(), StoreError> {
    let conn = open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut statement = conn.prepare("PRAGMA integrity_check")?;
    let report = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if report == ["ok"] {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            path: path.display().to_string(),
            report: report.join("; "),
        })
    }
}

fn open(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let open_error = |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    Ok(conn)
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Io {
            path: path.display().to_string(),
            source: err,
        }),
        _ => Ok(()),
    }
}
