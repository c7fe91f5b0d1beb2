//! Stored rows to wire types, and times between Unix milliseconds and RFC 3339.

use verdict_contracts::ids::RunId;
use verdict_contracts::runs::{HistoryEntry, Run, RunShard, ShardCounts, ShardStatus, TestResult};
use verdict_contracts::Timestamp;

use crate::store::{HistoryRow, RunRow, ShardRow, StoredResult};

/// A stored time (Unix milliseconds) as the wire shows it.
pub fn rfc3339(ms: i64) -> String {
    Timestamp::from_millis(ms).to_rfc3339()
}

/// A time a client gave in `field`, as stored.
pub fn parse_rfc3339(field: &str, text: &str) -> Result<i64, crate::Error> {
    Timestamp::parse_rfc3339(text)
        .map(Timestamp::millis)
        .ok_or_else(|| {
            crate::Error::BadRequest(format!("{field}: must be an RFC 3339 time, got {text:?}"))
        })
}

pub fn run_out(run: RunRow) -> Run {
    let finishing = &run.finishing;
    let shards = (finishing.shards_joined > 0 || finishing.shards_expected.is_some()).then_some(
        ShardCounts {
            expected: finishing.shards_expected,
            joined: finishing.shards_joined,
            finished: finishing.shards_finished,
        },
    );
    Run {
        build_key: run.build_key,
        shards,
        duration_ms: run
            .finished_at
            .map(|end| end.saturating_sub(run.started_at).max(0) as u64),
        id: run.id,
        project_id: run.project_id,
        name: run.name,
        status: run.status,
        attributes: run.attributes,
        started_at: rfc3339(run.started_at),
        finished_at: run.finished_at.map(rfc3339),
        counts: run.counts,
    }
}

pub fn shard_out(run_id: RunId, row: ShardRow) -> RunShard {
    RunShard {
        run_id,
        shard: row.shard,
        status: match (row.finished_at, row.interrupted) {
            (None, _) => ShardStatus::Running,
            (Some(_), false) => ShardStatus::Finished,
            (Some(_), true) => ShardStatus::Interrupted,
        },
        joined_at: rfc3339(row.joined_at),
        finished_at: row.finished_at.map(rfc3339),
    }
}

pub fn result_out(run_id: RunId, stored: StoredResult) -> TestResult {
    let row = stored.row;
    TestResult {
        id: row.id,
        run_id,
        test_key: row.test_key,
        suite: row.suite,
        name: row.name,
        status: row.status,
        attempt: row.attempt,
        duration_ms: row.duration_ms,
        started_at: row.started_at.map(rfc3339),
        message: row.message,
        trace: row.trace,
        stdout: row.stdout,
        stderr: row.stderr,
        attributes: row
            .attributes
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default(),
    }
}

pub fn history_out(row: HistoryRow) -> HistoryEntry {
    HistoryEntry {
        run_id: row.run_id,
        run_name: row.run_name,
        status: row.status,
        duration_ms: row.duration_ms,
        started_at: rfc3339(row.started_at),
        attributes: row.attributes,
        message: row.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_round_trip_through_rfc3339() {
        let text = rfc3339(1_795_600_800_123);
        assert_eq!(text, "2026-11-25T10:00:00.123Z");
        assert_eq!(parse_rfc3339("t", &text).unwrap(), 1_795_600_800_123);
    }

    #[test]
    fn a_malformed_time_names_its_field() {
        let err = parse_rfc3339("since", "yesterday").unwrap_err();
        assert!(err.to_string().starts_with("since:"));
    }
}
