//! The runs database's schema: one migration per step, its SQL in `migrations/`; a
//! database is brought to the latest version when the service starts.

use verdict_store::Migrations;

pub const MIGRATIONS: Migrations = Migrations(&[
    include_str!("../../migrations/001_runs_results_tests.sql"),
    include_str!("../../migrations/002_imports.sql"),
    include_str!("../../migrations/003_integer_keys.sql"),
    include_str!("../../migrations/004_outbox.sql"),
    include_str!("../../migrations/005_import_retries.sql"),
    include_str!("../../migrations/006_import_warnings.sql"),
    include_str!("../../migrations/007_sharded_builds.sql"),
    // The table of idempotency keys, which every service that remembers answers shares.
    verdict_store::idempotency::MIGRATION,
    include_str!("../../migrations/009_outcome_messages.sql"),
    include_str!("../../migrations/010_triage.sql"),
    include_str!("../../migrations/011_tests_catalog.sql"),
    include_str!("../../migrations/012_tests_lookup.sql"),
    include_str!("../../migrations/013_results_not_passed.sql"),
    include_str!("../../migrations/014_text_queue.sql"),
    include_str!("../../migrations/015_text_notes_ranges.sql"),
]);

#[cfg(test)]
mod tests {
    use verdict_store::rusqlite::Connection;
    use verdict_store::Migrations;

    use super::*;
    use crate::domain::ResultStatus;
    use crate::store::tests::{
        attach_text_index, ids, index_text, project, result, store_results, text,
    };
    use crate::store::*;

    const RUN_A: &str = "0192a24d-0000-7000-8000-00000000000a";
    const RUN_B: &str = "0192a24d-0000-7000-8000-00000000000b";

    #[test]
    fn a_database_with_text_keys_migrates_keeping_runs_results_history_and_text() {
        let mut conn = Connection::open_in_memory().unwrap();
        // As the service opens it: dropping a parent table must not cascade anywhere.
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        Migrations(&MIGRATIONS.0[..2]).apply(&mut conn).unwrap();
        conn.execute_batch(
            r#"
            INSERT INTO runs (id, project_id, name, status, attributes, started_at, last_activity,
                              total, passed, failed)
            VALUES ('0192a24d-0000-7000-8000-00000000000b', '0192a24d-0000-7000-8000-0000000000ff', 'second', 'failed', '{"os":"linux"}', 2000, 2000, 2, 1, 1),
                   ('0192a24d-0000-7000-8000-00000000000a', '0192a24d-0000-7000-8000-0000000000ff', 'first', 'passed', '{}', 1000, 1000, 1, 1, 0);
            INSERT INTO run_attributes VALUES ('0192a24d-0000-7000-8000-00000000000b', 'os', 'linux', '0192a24d-0000-7000-8000-0000000000ff', 2000);
            INSERT INTO tests VALUES ('0192a24d-0000-7000-8000-0000000000ff', 'k1', 's', 'one'), ('0192a24d-0000-7000-8000-0000000000ff', 'k2', 's', 'two');
            INSERT INTO test_outcomes VALUES ('0192a24d-0000-7000-8000-00000000000a', 'k1', '0192a24d-0000-7000-8000-0000000000ff', 1000, 1, 'passed', 0, 5),
                ('0192a24d-0000-7000-8000-00000000000b', 'k1', '0192a24d-0000-7000-8000-0000000000ff', 2000, 1, 'failed', 0, 6),
                ('0192a24d-0000-7000-8000-00000000000b', 'k2', '0192a24d-0000-7000-8000-0000000000ff', 2000, 1, 'passed', 0, 7);
            INSERT INTO results (seq, run_id, id, test_key, suite, name, status, attempt, message)
            VALUES (1, '0192a24d-0000-7000-8000-00000000000a', 'x', 'k1', 's', 'one', 'passed', 1, NULL),
                   (2, '0192a24d-0000-7000-8000-00000000000b', 'y', 'k2', 's', 'two', 'passed', 1, NULL),
                   (3, '0192a24d-0000-7000-8000-00000000000b', 'z', 'k1', 's', 'one', 'failed', 1, 'boom: timeout');
            INSERT INTO results_text (rowid, name, message)
            VALUES (1, 'one', NULL), (2, 'two', NULL), (3, 'one', 'boom: timeout');
            "#,
        )
        .unwrap();
        MIGRATIONS.apply(&mut conn).unwrap();
        // The text index of a migrated database is built by the indexer, from its results.
        attach_text_index(&mut conn);
        index_text(&mut conn);

        let b = run(&conn, RUN_B.parse().unwrap()).unwrap().unwrap();
        assert_eq!((b.counts.total, b.counts.failed), (2, 1));
        assert_eq!(ids(&conn, b.rid, &ResultFilter::default()), ["y", "z"]);
        let failed = ResultFilter {
            status: Some(ResultStatus::Failed),
            ..ResultFilter::default()
        };
        assert_eq!(ids(&conn, b.rid, &failed), ["z"]);
        assert_eq!(ids(&conn, b.rid, &text("timeout")), ["z"]);
        let history: Vec<_> = test_history(&conn, project(), "k1", None, 10)
            .unwrap()
            .into_iter()
            .map(|row| row.run_id.to_string())
            .collect();
        assert_eq!(history, [RUN_B, RUN_A]);
        let linux = RunFilter {
            attributes: [("os".to_owned(), "linux".to_owned())].into(),
            ..RunFilter::default()
        };
        let runs: Vec<_> = list_runs(&conn, project(), &linux, 10)
            .unwrap()
            .into_iter()
            .map(|run| run.id)
            .collect();
        assert_eq!(runs, [b.id]);

        store_results(
            &mut conn,
            &b,
            &[result("w", "three", ResultStatus::Passed, None)],
        );
        assert_eq!(ids(&conn, b.rid, &ResultFilter::default()), ["y", "z", "w"]);
        let tx = conn.transaction().unwrap();
        assert!(delete_run(&tx, b.id).unwrap());
        assert!(ids(&tx, b.rid, &ResultFilter::default()).is_empty());
        assert!(ids(&tx, b.rid, &text("timeout")).is_empty());
    }

    #[test]
    fn notes_waiting_before_notes_became_ranges_keep_their_result_and_meaning() {
        let mut conn = Connection::open_in_memory().unwrap();
        let before_ranges = MIGRATIONS.0.len() - 1;
        Migrations(&MIGRATIONS.0[..before_ranges])
            .apply(&mut conn)
            .unwrap();
        conn.execute_batch(
            "INSERT INTO runs (rid, id, project_id, name, status, attributes, started_at, last_activity)
             VALUES (1, '0192a24d-0000-7000-8000-00000000000a', '0192a24d-0000-7000-8000-0000000000ff', 'nightly', 'running', '{}', 1, 1);
             INSERT INTO tests (tid, project_id, test_key, name) VALUES (1, '0192a24d-0000-7000-8000-0000000000ff', 'k', 'one');
             INSERT INTO results (seq, run, id, test, name, status, attempt, message)
             VALUES (4294967297, 1, 'x', 1, 'one', 'failed', 1, 'timeout'),
                    (4294967298, 1, 'y', 1, 'one', 'failed', 1, 'refused');
             INSERT INTO text_queue (seq, replaces) VALUES (4294967297, 0), (4294967298, 1);",
        )
        .unwrap();

        MIGRATIONS.apply(&mut conn).unwrap();

        let notes: Vec<(i64, i64, i64)> = conn
            .prepare("SELECT first, last, kind FROM text_queue ORDER BY id")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            notes,
            [(4294967297, 4294967297, 0), (4294967298, 4294967298, 1)]
        );
    }
}
