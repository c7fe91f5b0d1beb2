//! `verdict backup` and `verdict restore` as an operator runs them: the database is
//! found by the same settings the service reads.

use std::path::Path;
use std::process::{Command, Output};

use verdict_store::rusqlite::Connection;

fn verdict(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(args)
        .env_remove("VERDICT_RUNS_DB")
        .env("VERDICT_DATA_DIR", data_dir)
        .output()
        .expect("run verdict")
}

/// `verdict <command> --service runs <flag> <file>` with `data_dir` as the data directory.
fn on_runs(data_dir: &Path, command: &str, flag: &str, file: &Path) -> Output {
    let file = file.to_str().expect("a UTF-8 temporary path");
    verdict(data_dir, &[command, "--service", "runs", flag, file])
}

fn rows(database: &Path) -> i64 {
    Connection::open(database)
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn a_backup_of_one_service_restores_into_another_data_directory() {
    let source = tempfile::tempdir().unwrap();
    Connection::open(source.path().join("runs.db"))
        .unwrap()
        .execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1), (2);",
        )
        .unwrap();
    let out = source.path().join("runs-backup.db");

    let backup = on_runs(source.path(), "backup", "--out", &out);
    assert!(backup.status.success(), "{backup:?}");

    let target = tempfile::tempdir().unwrap();
    let restore = on_runs(target.path(), "restore", "--from", &out);
    assert!(restore.status.success(), "{restore:?}");
    assert_eq!(rows(&target.path().join("runs.db")), 2);
}

#[test]
fn a_restore_of_runs_removes_the_text_index_that_described_the_data_before() {
    let source = tempfile::tempdir().unwrap();
    Connection::open(source.path().join("runs.db"))
        .unwrap()
        .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let out = source.path().join("runs-backup.db");
    assert!(on_runs(source.path(), "backup", "--out", &out)
        .status
        .success());
    let target = tempfile::tempdir().unwrap();
    let text_index = target.path().join("runs-text.db");
    std::fs::write(&text_index, "an index of other data").unwrap();

    let restore = on_runs(target.path(), "restore", "--from", &out);

    assert!(restore.status.success(), "{restore:?}");
    assert!(!text_index.exists());
    assert!(String::from_utf8_lossy(&restore.stdout).contains("rebuilds"));
    assert_eq!(rows(&target.path().join("runs.db")), 1);
}

#[test]
fn a_backup_refuses_to_overwrite_a_file() {
    let source = tempfile::tempdir().unwrap();
    Connection::open(source.path().join("runs.db"))
        .unwrap()
        .execute_batch("CREATE TABLE t (x);")
        .unwrap();
    let out = source.path().join("existing");
    std::fs::write(&out, "keep me").unwrap();

    let backup = on_runs(source.path(), "backup", "--out", &out);

    assert_eq!(backup.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&backup.stderr).contains("never overwrites"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
}

/// A backup holds everything the service does (password hashes, token hashes, signing
/// keys): only its owner may read it, whatever the umask.
#[test]
fn a_backup_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let source = tempfile::tempdir().unwrap();
    Connection::open(source.path().join("runs.db"))
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let out = source.path().join("runs-backup.db");

    let backup = on_runs(source.path(), "backup", "--out", &out);

    assert!(backup.status.success(), "{backup:?}");
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    assert_eq!(rows(&out), 1);
}
