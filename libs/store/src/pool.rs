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
    /// Database files beside this one that readers and side writers see.
    pub attached: Vec<Attached>,
}

/// A database file beside a service's own, for data derived from it and written off the
/// writer's path: read connections and [`Store::side_writer`] see it under `schema`. The
/// writer does not attach it, because its transactions begin `IMMEDIATE`, which would
/// take this file's write lock too for as long as they last. It is created empty, in WAL
/// mode, when the store opens; its owner creates what goes in it. Its commits are
/// `synchronous = FULL`: whatever it records about the service's database must not
/// survive a power loss that this file's own writes do not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    pub schema: &'static str,
    pub path: PathBuf,
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
            attached: Vec::new(),
        }
    }
}

/// A service's SQLite database: one writer and a few readers. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    settings: StoreSettings,
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
        let mut writer = open_connection(settings, Role::Writer)?;
        // The writer's transactions take the write lock when they begin, where SQLite
        // waits `busy_timeout` for another process (a second instance during an
        // upgrade) to release it. A deferred transaction that reads first and then
        // writes gets SQLITE_BUSY at once instead, and its work is retried for nothing.
        writer.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        migrations.apply(&mut writer)?;
        for attached in &settings.attached {
            create_attached(attached, settings.busy_timeout)?;
        }
        let checkpointer = Checkpointer::start(
            open_connection(settings, Role::Checkpointer)?,
            settings.checkpoint_interval,
        )
        .map_err(|source| StoreError::Io {
            path: settings.path.display().to_string(),
            source,
        })?;
        let readers = (0..settings.readers.max(1))
            .map(|_| open_connection(settings, Role::Reader).map(Mutex::new))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                checkpointer: Mutex::new(Some(checkpointer)),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.settings.path
    }

    /// A connection of its own that writes the attached databases (and only reads the
    /// service's own: that is the writer's). For a thread that keeps derived data beside
    /// the writer instead of on its path; its transactions begin `DEFERRED`, so they
    /// take no lock on the service's database.
    pub fn side_writer(&self) -> Result<Connection, StoreError> {
        open_connection(&self.inner.settings, Role::SideWriter)
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

/// What a connection is for, which decides its flags, pragmas and attachments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The single writer of the service's database.
    Writer,
    /// Checkpoints every file; it also keeps the attached ones open, which read-only
    /// connections need to read a file in WAL mode.
    Checkpointer,
    Reader,
    SideWriter,
}

fn open_connection(settings: &StoreSettings, role: Role) -> Result<Connection, StoreError> {
    let read_only = role == Role::Reader;
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
    if role != Role::Writer {
        for attached in &settings.attached {
            attach(&conn, attached).map_err(|source| StoreError::Open {
                path: attached.path.display().to_string(),
                source,
            })?;
        }
    }
    Ok(conn)
}

fn attach(conn: &Connection, attached: &Attached) -> rusqlite::Result<()> {
    let path = attached.path.to_string_lossy();
    conn.execute(
        &format!("ATTACH DATABASE ?1 AS {}", attached.schema),
        [path.as_ref()],
    )?;
    conn.pragma_update(Some(attached.schema), "synchronous", "FULL")?;
    conn.pragma_update(Some(attached.schema), "cache_size", -(CACHE_KIB as i64))
}

/// Creates an attached database's file unless it exists, in WAL mode.
fn create_attached(attached: &Attached, busy_timeout: Duration) -> Result<(), StoreError> {
    let open_error = |source| StoreError::Open {
        path: attached.path.display().to_string(),
        source,
    };
    let conn = Connection::open(&attached.path).map_err(open_error)?;
    conn.busy_timeout(busy_timeout).map_err(open_error)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_error)
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
    async fn a_side_writer_writes_the_attached_file_while_the_writer_holds_a_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = StoreSettings::new(dir.path().join("db/test.db"));
        settings.attached.push(Attached {
            schema: "derived",
            path: dir.path().join("db/test-derived.db"),
        });
        let store = Store::open(settings, SCHEMA).await.unwrap();
        let side = store.side_writer().unwrap();
        side.execute_batch("CREATE TABLE derived.copies (id INTEGER PRIMARY KEY)")
            .unwrap();
        let (held, hold) = std::sync::mpsc::channel();
        let (side_done, wait_for_side) = std::sync::mpsc::channel::<()>();
        let side_writes = tokio::task::spawn_blocking(move || {
            hold.recv().unwrap();
            // No waiting: the attached file must not be locked by the writer at all.
            side.execute_batch(
                "PRAGMA busy_timeout = 0; INSERT INTO derived.copies (id) VALUES (1)",
            )
            .unwrap();
            side_done.send(()).unwrap();
        });
        store
            .write(move |conn| {
                let tx = conn.transaction()?;
                tx.execute("INSERT INTO parent (id) VALUES (1)", [])?;
                held.send(()).unwrap();
                wait_for_side.recv().unwrap();
                tx.commit()?;
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        side_writes.await.unwrap();
        let (copies, parents): (i64, i64) = store
            .read(|conn| {
                conn.query_row(
                    "SELECT (SELECT count(*) FROM derived.copies), (SELECT count(*) FROM parent)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(StoreError::from)
            })
            .await
            .unwrap();
        assert_eq!((copies, parents), (1, 1));
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
