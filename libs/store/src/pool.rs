use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use verdict_settings::{Env, SettingError};

use crate::checkpoint::{Checkpointer, WRITER_BACKSTOP_PAGES};
use crate::{Migrations, StoreError};

/// Page cache per connection.
const CACHE_KIB: usize = 64 * 1024;

/// The size a restarted WAL file is truncated to.
const WAL_KEPT_BYTES: i64 = 64 * 1024 * 1024;

/// How a service's database is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    pub path: PathBuf,
    /// Read connections besides the writer.
    pub readers: usize,
    /// How long a statement waits for a lock held by another connection or process.
    pub busy_timeout: Duration,
    /// `NORMAL` survives a process crash in WAL mode; `FULL` also survives power loss.
    pub synchronous_full: bool,
    /// How often the checkpointer copies the WAL into the database file.
    pub checkpoint_interval: Duration,
}

impl StoreSettings {
    /// The database of service `name`: `VERDICT_<NAME>_DB`, else `<VERDICT_DATA_DIR>/<name>.db`
    /// (data dir default `./data`); `VERDICT_SQLITE_SYNCHRONOUS` is `normal` (default) or `full`.
    pub fn from_env(env: &Env, name: &str) -> Result<Self, SettingError> {
        let variable = format!("VERDICT_{}_DB", name.to_ascii_uppercase());
        let path = match env.get(&variable) {
            Some(path) => PathBuf::from(path),
            None => {
                PathBuf::from(env.string("VERDICT_DATA_DIR", "./data")).join(format!("{name}.db"))
            }
        };
        let synchronous_full = match env
            .string("VERDICT_SQLITE_SYNCHRONOUS", "normal")
            .to_ascii_lowercase()
            .as_str()
        {
            "normal" => false,
            "full" => true,
            other => {
                return Err(SettingError {
                    name: "VERDICT_SQLITE_SYNCHRONOUS".into(),
                    value: other.into(),
                    reason: "expected normal or full".into(),
                })
            }
        };
        Ok(Self {
            synchronous_full,
            ..Self::new(path)
        })
    }

    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            synchronous_full: false,
            checkpoint_interval: Duration::from_millis(500),
        }
    }
}

/// A service's SQLite database: one writer and a few readers. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// `None` once the store is closing.
    checkpointer: Mutex<Option<Checkpointer>>,
}

impl Store {
    /// Opens (creating if needed) the database, sets the pragmas and applies migrations.
    pub async fn open(settings: StoreSettings, migrations: Migrations) -> Result<Self, StoreError> {
        tokio::task::spawn_blocking(move || Self::open_blocking(&settings, migrations))
            .await
            .map_err(StoreError::Task)?
    }

    fn open_blocking(settings: &StoreSettings, migrations: Migrations) -> Result<Self, StoreError> {
        if let Some(parent) = settings.path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.display().to_string(),
                source,
            })?;
        }
        let mut writer = open_connection(settings, false)?;
        // The writer's transactions take the write lock when they begin, where SQLite
        // waits `busy_timeout` for another process (a second instance during an
        // upgrade) to release it. A deferred transaction that reads first and then
        // writes gets SQLITE_BUSY at once instead, and its work is retried for nothing.
        writer.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        migrations.apply(&mut writer)?;
        let checkpointer = Checkpointer::start(
            open_connection(settings, false)?,
            settings.checkpoint_interval,
        )
        .map_err(|source| StoreError::Io {
            path: settings.path.display().to_string(),
            source,
        })?;
        let readers = (0..settings.readers.max(1))
            .map(|_| open_connection(settings, true).map(Mutex::new))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: settings.path.clone(),
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                checkpointer: Mutex::new(Some(checkpointer)),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `work` on the writer connection, on the blocking pool. Writes are serialized
    /// here, so they never contend for SQLite's lock inside the process.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            work(&mut conn)
        })
        .await
        .map_err(|err| E::from(StoreError::Task(err)))?
    }

    /// Runs `work` on one of the read connections, on the blocking pool.
    pub async fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let index = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let conn = inner.readers[index]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            work(&conn)
        })
        .await
        .map_err(|err| E::from(StoreError::Task(err)))?
    }

    /// Checkpoints the WAL into the main file so the database is self-contained on disk.
    /// The connections close when the last clone of the store is dropped.
    pub async fn close(self) -> Result<(), StoreError> {
        let checkpointer = self
            .inner
            .checkpointer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(checkpointer) = checkpointer {
            tokio::task::spawn_blocking(move || checkpointer.stop())
                .await
                .map_err(StoreError::Task)?;
        }
        self.write(|conn| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(StoreError::from)
        })
        .await
    }
}

fn open_connection(settings: &StoreSettings, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let open_error = |source| StoreError::Open {
        path: settings.path.display().to_string(),
        source,
    };
    let conn = Connection::open_with_flags(&settings.path, flags).map_err(open_error)?;
    conn.busy_timeout(settings.busy_timeout)
        .map_err(open_error)?;
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        // The checkpointer copies the log; a writing connection does so only past this.
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_BACKSTOP_PAGES)
            .map_err(open_error)?;
        // A log that grew during a burst shrinks back once it restarts.
        conn.pragma_update(None, "journal_size_limit", WAL_KEPT_BYTES)
            .map_err(open_error)?;
    }
    let synchronous = if settings.synchronous_full {
        "FULL"
    } else {
        "NORMAL"
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(open_error)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(open_error)?;
    // SQLite's default page cache is 2 MiB; large indexes written in big transactions
    // thrash it. Negative values are KiB.
    conn.pragma_update(None, "cache_size", -(CACHE_KIB as i64))
        .map_err(open_error)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(open_error)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_lives_in_the_data_dir_unless_its_path_is_given() {
        let env = Env::from_pairs([("VERDICT_DATA_DIR", "/srv/verdict")]);
        let settings = StoreSettings::from_env(&env, "runs").unwrap();
        assert_eq!(settings.path, PathBuf::from("/srv/verdict/runs.db"));
        let env = Env::from_pairs([("VERDICT_RUNS_DB", "/fast/runs.sqlite")]);
        let settings = StoreSettings::from_env(&env, "runs").unwrap();
        assert_eq!(settings.path, PathBuf::from("/fast/runs.sqlite"));
    }

    const SCHEMA: Migrations = Migrations(&[
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);
         CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER NOT NULL REFERENCES parent(id));",
    ]);

    async fn open(dir: &tempfile::TempDir) -> Store {
        Store::open(StoreSettings::new(dir.path().join("db/test.db")), SCHEMA)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_writer_runs_in_wal_mode_with_foreign_keys_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let (mode, fk): (String, i64) = store
            .write(|conn| {
                let mode = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
                let fk = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
                Ok::<_, StoreError>((mode, fk))
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(fk, 1);
    }

    #[tokio::test]
    async fn a_transaction_that_reads_then_writes_waits_for_another_processs_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let path = dir.path().join("db/test.db");
        let (locked, lock) = std::sync::mpsc::channel();
        let other_process = std::thread::spawn(move || {
            let conn = Connection::open(path).unwrap();
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            locked.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            conn.execute_batch("COMMIT").unwrap();
        });
        lock.recv().unwrap();
        let written = store
            .write(|conn| {
                let tx = conn.transaction()?;
                let parents: i64 = tx.query_row("SELECT count(*) FROM parent", [], |r| r.get(0))?;
                tx.execute("INSERT INTO parent (id) VALUES (?1)", [parents + 1])?;
                tx.commit()?;
                Ok::<_, StoreError>(())
            })
            .await;
        other_process.join().unwrap();
        assert!(written.is_ok(), "{written:?}");
    }

    #[tokio::test]
    async fn a_row_pointing_at_a_missing_parent_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let result = store
            .write(|conn| {
                conn.execute("INSERT INTO child (id, parent) VALUES (1, 42)", [])
                    .map_err(StoreError::from)
            })
            .await;
        assert!(result.is_err());
    }

    #[tokio::test]
    async fn readers_see_what_the_writer_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        store
            .write(|conn| {
                conn.execute("INSERT INTO parent (id) VALUES (7)", [])
                    .map_err(StoreError::from)
            })
            .await
            .unwrap();
        for _ in 0..8 {
            let count: i64 = store
                .read(|conn| {
                    conn.query_row("SELECT count(*) FROM parent", [], |r| r.get(0))
                        .map_err(StoreError::from)
                })
                .await
                .unwrap();
            assert_eq!(count, 1);
        }
    }

    #[tokio::test]
    async fn readers_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let result = store
            .read(|conn| {
                conn.execute("INSERT INTO parent (id) VALUES (1)", [])
                    .map_err(StoreError::from)
            })
            .await;
        assert!(result.is_err());
    }

    #[tokio::test]
    async fn committed_pages_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let file = dir.path().join("db/test.db");
        let size_before = std::fs::metadata(&file).unwrap().len();
        // 2 MiB: 512 pages, under SQLite's default autocheckpoint and far under the
        // writer's backstop, so only the checkpointer can move them.
        store
            .write(|conn| {
                conn.execute_batch(
                    "CREATE TABLE blobs (b BLOB);
                     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2048)
                     INSERT INTO blobs SELECT zeroblob(1024) FROM n;",
                )
                .map_err(StoreError::from)
            })
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&file).unwrap().len() < size_before + 2 * 1024 * 1024 {
            assert!(
                std::time::Instant::now() < deadline,
                "the database file did not grow: nothing was checkpointed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn data_survives_closing_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        store
            .write(|conn| {
                conn.execute("INSERT INTO parent (id) VALUES (3)", [])
                    .map_err(StoreError::from)
            })
            .await
            .unwrap();
        store.close().await.unwrap();
        let store = open(&dir).await;
        let count: i64 = store
            .read(|conn| {
                conn.query_row("SELECT count(*) FROM parent", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .await
            .unwrap();
        assert_eq!(count, 1);
    }
}
