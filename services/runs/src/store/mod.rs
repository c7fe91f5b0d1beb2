//! All SQL of the runs service, one module per aggregate. Functions take a connection so
//! callers choose the transaction. Times are Unix milliseconds; the wire form is made in
//! `convert.rs`.

use verdict_store::parsed;
use verdict_store::rusqlite;

/// The condition that finds a project's test (`?1`) by key (`?2`), as `t`: through
/// `tests_by_key`, whose expression it repeats exactly so the planner can use it
/// (migration 012 says why tests are found by a key prefix).
macro_rules! test_is {
    () => {
        "substr(t.test_key, 1, 12) = substr(?2, 1, 12) AND t.project_id = ?1 AND t.test_key = ?2"
    };
}
use test_is;

mod imports;
mod migrations;
mod outbox;
mod results;
mod runs;
mod shards;
pub mod text;
pub mod triage;

pub use imports::*;
pub use migrations::MIGRATIONS;
pub use outbox::*;
pub use results::*;
pub use runs::*;
pub use shards::*;

fn conversion(err: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        err.to_string().into(),
    )
}

fn boxed(value: &str) -> Box<dyn rusqlite::ToSql> {
    Box::new(value.to_owned())
}

fn prefixed(columns: &str, prefix: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{prefix}{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use verdict_contracts::ids::{ProjectId, RunId};
    use verdict_store::rusqlite::Connection;

    use super::*;
    use crate::domain::{Counts, Finishing, ResultStatus, RunStatus};

    /// A database at the latest version with its (empty) text index attached, as the
    /// service's store tests use it.
    pub(crate) fn conn() -> Connection {
        let mut conn = MIGRATIONS.in_memory().unwrap();
        attach_text_index(&mut conn);
        index_text(&mut conn);
        conn
    }

    /// Attaches a new text index in memory, as the service attaches its file; its first
    /// pass builds it from the stored results.
    pub(crate) fn attach_text_index(conn: &mut Connection) {
        conn.execute("ATTACH DATABASE ':memory:' AS text_index", [])
            .unwrap();
        text::prepare(conn).unwrap();
    }

    /// Indexes every noted result, as the indexer does a moment after a commit.
    pub(crate) fn index_text(conn: &mut Connection) {
        text::index_queued(conn, u64::MAX).unwrap();
    }

    /// The query plan of `sql` in that database.
    pub(crate) fn plan(conn: &Connection, sql: &str) -> String {
        verdict_store::query_plan(conn, sql).unwrap()
    }

    pub(super) fn assert_index_scan(sql: &str, index: &str) {
        let plan = plan(&conn(), sql);
        assert!(plan.contains(index), "expected {index}:\n{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "sorts in memory:\n{plan}");
        assert!(
            !plan.contains("SCAN r\n") && !plan.starts_with("SCAN runs"),
            "full scan:\n{plan}"
        );
    }

    pub(super) fn result(
        id: &str,
        name: &str,
        status: ResultStatus,
        message: Option<&str>,
    ) -> ResultRow {
        ResultRow {
            id: id.into(),
            test_key: format!("key of {name}"),
            suite: None,
            name: name.into(),
            status,
            attempt: 1,
            duration_ms: None,
            started_at: None,
            message: message.map(Into::into),
            trace: None,
            stdout: None,
            stderr: None,
            attributes: None,
        }
    }

    pub(super) fn store_results(conn: &mut Connection, run: &RunRow, results: &[ResultRow]) {
        let tx = conn.transaction().unwrap();
        {
            let known = KnownTests::default();
            let mut writer = ResultWriter::new(&tx, &known).unwrap();
            for result in results {
                let test = writer
                    .test(run, &result.test_key, None, &result.name)
                    .unwrap();
                writer.upsert(run, test, result).unwrap();
            }
            writer.finish().unwrap();
        }
        tx.commit().unwrap();
        index_text(conn);
    }

    /// The project of every run the store tests make.
    pub(super) const PROJECT: &str = "0192a24d-0000-7000-8000-0000000000ff";

    pub(super) fn project() -> ProjectId {
        PROJECT.parse().unwrap()
    }

    pub(super) fn new_run(conn: &mut Connection) -> RunRow {
        run_started_at(conn, 1)
    }

    pub(super) fn run_started_at(conn: &mut Connection, started_at: i64) -> RunRow {
        let mut run = RunRow {
            rid: 0,
            id: RunId::generate(),
            project_id: project(),
            name: "nightly".into(),
            status: RunStatus::Running,
            attributes: BTreeMap::new(),
            started_at,
            finished_at: None,
            counts: Counts::default(),
            build_key: None,
            finishing: Finishing::default(),
        };
        let tx = conn.transaction().unwrap();
        insert_run(&tx, &mut run).unwrap();
        tx.commit().unwrap();
        run
    }

    pub(super) fn run_of(conn: &Connection, id: RunId) -> RunRow {
        run(conn, id).unwrap().unwrap()
    }

    pub(super) fn ids(conn: &Connection, rid: i64, filter: &ResultFilter) -> Vec<String> {
        list_results(conn, rid, filter, 100)
            .unwrap()
            .into_iter()
            .map(|stored| stored.row.id)
            .collect()
    }

    pub(super) fn text(words: &str) -> ResultFilter {
        ResultFilter {
            text: Some(format!("\"{words}\"*")),
            ..ResultFilter::default()
        }
    }
}
