//! Backups of a database taken while it is being written, and restores from them.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use verdict_store::rusqlite::Connection;
use verdict_store::{backup, Migrations, Store, StoreError, StoreSettings};

/// Each committed batch adds `BATCH` items and records itself in `batches`.
const MIGRATIONS: Migrations = Migrations(&["
    CREATE TABLE batches (id INTEGER PRIMARY KEY);
    CREATE TABLE items (batch INTEGER NOT NULL REFERENCES batches(id), n INTEGER NOT NULL);
"]);
const BATCH: i64 = 50;

async fn write_batch(store: &Store, id: i64) {
    store
        .write(move |conn| {
            let tx = conn.transaction()?;
            tx.execute("INSERT INTO batches (id) VALUES (?1)", [id])?;
            for n in 0..BATCH {
                tx.execute("INSERT INTO items (batch, n) VALUES (?1, ?2)", [id, n])?;
            }
            tx.commit().map_err(StoreError::from)
        })
        .await
        .unwrap();
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_restores_to_a_consistent_committed_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let store = Store::open(StoreSettings::new(&live), MIGRATIONS)
        .await
        .unwrap();
    for id in 0..20 {
        write_batch(&store, id).await;
    }
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let (store, writing) = (store.clone(), writing.clone());
        tokio::spawn(async move {
            let mut id = 20;
            while writing.load(Ordering::Relaxed) {
                write_batch(&store, id).await;
                id += 1;
            }
            id
        })
    };

    tokio::time::sleep(Duration::from_millis(100)).await;
    let out = dir.path().join("backup.db");
    let copy = out.clone();
    let size = tokio::task::spawn_blocking(move || backup::backup(&live, &copy))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    writing.store(false, Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(size > 0);

    let restored = dir.path().join("restored.db");
    backup::restore(&out, &restored).unwrap();
    backup::integrity_check(&restored).unwrap();
    let conn = Connection::open(&restored).unwrap();
    let batches = count(&conn, "SELECT count(*) FROM batches");
    assert!(
        batches >= 20 && batches < written,
        "{batches} of {written} batches"
    );
    assert_eq!(
        count(&conn, "SELECT max(id) + 1 FROM batches"),
        batches,
        "the batches form a prefix"
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM items"), batches * BATCH);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM items WHERE batch NOT IN (SELECT id FROM batches)"
        ),
        0
    );
}

#[tokio::test]
async fn a_restore_replaces_the_content_of_an_existing_database() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let store = Store::open(StoreSettings::new(&live), MIGRATIONS)
        .await
        .unwrap();
    write_batch(&store, 0).await;
    let out = dir.path().join("backup.db");
    backup::backup(&live, &out).unwrap();
    write_batch(&store, 1).await;
    store.close().await.unwrap();

    backup::restore(&out, &live).unwrap();

    let conn = Connection::open(&live).unwrap();
    assert_eq!(count(&conn, "SELECT count(*) FROM batches"), 1);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_backup_never_overwrites_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    Connection::open(&live)
        .unwrap()
        .execute_batch("CREATE TABLE t (x);")
        .unwrap();
    let out = dir.path().join("taken.db");
    std::fs::write(&out, b"precious").unwrap();

    let err = backup::backup(&live, &out).unwrap_err();

    assert!(matches!(err, StoreError::BackupExists(_)), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
}

#[test]
fn a_damaged_backup_is_refused_and_the_database_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    Connection::open(&live)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let damaged = dir.path().join("damaged.db");
    std::fs::write(&damaged, b"SQLite format 3\0 but not really").unwrap();

    assert!(backup::restore(&damaged, &live).is_err());

    assert_eq!(table_rows(&live), 1);
}

fn table_rows(path: &Path) -> i64 {
    count(&Connection::open(path).unwrap(), "SELECT count(*) FROM t")
}
