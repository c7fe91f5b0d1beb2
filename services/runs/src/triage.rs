//! Triage (issue #16): failures grouped by signature, new failures, quarantine, trends,
//! the slowest tests and the test catalog. Lists ranked by a figure are computed over
//! a bounded window of runs and paged by rank (see [`Rank`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use verdict_contracts::auth::{Principal, Role};
use verdict_contracts::ids::ProjectId;
use verdict_contracts::page::{encode_cursor, Page};
use verdict_contracts::runs::triage::{
    actor, CatalogTest, FailureGroup, FailureSignature, ListFailures, ListTests, ProjectTrend,
    Quarantine, QuarantineEvent, QuarantineRequest, QuarantineState, RunFailures, RunNews,
    RunSelection, SetQuarantine, SignatureResults, SlowestTests, TestRef, TestStats, TestTrend,
    TrendDay, Window, BRANCH_ATTRIBUTE, MAX_REASON_BYTES,
};
use verdict_contracts::runs::{limits, FlakyTest, FlakyTests, RunRef, TestKey, TestResult};
use verdict_contracts::system::Empty;
use verdict_contracts::Timestamp;
use verdict_store::rusqlite::Connection;

use crate::context::Runs;
use crate::convert::{self, parse_rfc3339, result_out};
use crate::domain::{
    is_signature_id, percentile, rank_page, Rank, ResultStatus, SearchText, TestRecord,
};
use crate::flaky;
use crate::queries::{self, check_attribute_filters, not_ours};
use crate::store::triage::{self as store, QuarantineRow, TestRow, WindowFilter, WindowRun};
use crate::store::{self as runs_store, OutcomeRow, RunRow};
use crate::Error;

/// Tests named per failure group, at most.
const MAX_GROUP_TESTS: usize = 20;
/// Most new failure signatures, and most flaky tests, one run's news names.
const MAX_NEWS: usize = 20;
/// The latest runs of a test the catalog sums up.
const CATALOG_RUNS: u32 = 50;
const DAY_MS: i64 = 86_400_000;

fn bad(message: String) -> Error {
    Error::BadRequest(message)
}

fn rank_cursor(cursor: &Option<String>) -> Result<Option<Rank>, Error> {
    queries::cursor(cursor, 3)?
        .map(|parts| Rank::from_parts(&parts).ok_or_else(not_ours))
        .transpose()
}

fn encode_rank(rank: Rank) -> String {
    let parts = rank.parts();
    encode_cursor(&[&parts[0], &parts[1], &parts[2]])
}

/// The runs a selection names, as the store reads them.
fn window_filter(selection: RunSelection, now: i64) -> Result<WindowFilter, Error> {
    check_attribute_filters(&selection.attributes)?;
    Ok(match selection.window {
        Window::Runs(runs) => WindowFilter {
            attributes: selection.attributes,
            since: None,
            limit: runs,
        },
        Window::Days(days) => WindowFilter {
            attributes: selection.attributes,
            since: Some(now - i64::from(days) * DAY_MS),
            limit: store::MAX_RUNS_BY_DAYS,
        },
    })
}

fn test_key(text: &str) -> Result<String, Error> {
    text.parse::<TestKey>()
        .map(|key| key.to_string())
        .map_err(|err| bad(format!("test_key: {err}")))
}

fn known_test(conn: &Connection, project_id: ProjectId, key: &str) -> Result<TestRow, Error> {
    store::test_by_key(conn, project_id, key)?.ok_or(Error::NotFound("test"))
}

// ---- failures ------------------------------------------------------------------------

/// A project's failure signatures over a window of runs, most failures first.
pub async fn list_failures(
    runs: Runs,
    principal: Principal,
    request: ListFailures,
) -> Result<Page<FailureSignature>, Error> {
    let access = runs
        .authorize(&principal, &request.project, Role::Viewer)
        .await?;
    let filter = window_filter(request.selection, Timestamp::now().millis())?;
    let after = rank_cursor(&request.page.cursor)?;
    let limit = request.page.effective_limit() as usize;
    runs.store
        .read(move |conn| {
            struct Tally {
                sid: i64,
                failures: u64,
                tests: HashSet<i64>,
                runs: u64,
                last_seen: i64,
            }
            let mut tallies: HashMap<i64, Tally> = HashMap::new();
            for run in store::window_runs(conn, access.project_id, &filter)? {
                let mut counted = HashSet::new();
                for failure in store::failures_of_run(conn, run.rid)? {
                    let tally = tallies.entry(failure.signature).or_insert(Tally {
                        sid: failure.signature,
                        failures: 0,
                        tests: HashSet::new(),
                        runs: 0,
                        last_seen: run.started_at,
                    });
                    tally.failures += 1;
                    tally.tests.insert(failure.test);
                    if counted.insert(failure.signature) {
                        tally.runs += 1;
                    }
                    tally.last_seen = tally.last_seen.max(run.started_at);
                }
            }
            let (page, next) = rank_page(
                tallies.into_values().collect(),
                |tally| Rank::new(tally.failures, tally.runs, tally.sid),
                after,
                limit,
            );
            let mut items = Vec::with_capacity(page.len());
            for tally in page {
                let Some(signature) = store::signature(conn, tally.sid)? else {
                    continue;
                };
                items.push(FailureSignature {
                    signature: signature.hash,
                    pattern: signature.pattern,
                    example: signature.example,
                    failures: tally.failures,
                    tests: tally.tests.len() as u64,
                    runs: tally.runs,
                    first_seen: convert::rfc3339(signature.first_seen),
                    last_seen: convert::rfc3339(tally.last_seen),
                });
            }
            Ok::<_, Error>(Page {
                items,
                next_cursor: next.map(encode_rank),
            })
        })
        .await
}

/// One run's failures grouped by signature, most failures first; with `new_only`, only
/// regressions and signatures first seen in the run.
pub async fn run_failures(
    runs: Runs,
    principal: Principal,
    request: RunFailures,
) -> Result<Page<FailureGroup>, Error> {
    let baseline = request
        .baseline
        .unwrap_or_else(|| BRANCH_ATTRIBUTE.to_owned());
    if baseline.is_empty() || baseline.len() > limits::MAX_ATTRIBUTE_KEY_BYTES {
        return Err(bad(format!(
            "baseline: must be an attribute key of 1 to {} bytes",
            limits::MAX_ATTRIBUTE_KEY_BYTES
        )));
    }
    let run = runs
        .run_for(&principal, request.run_id, Role::Viewer)
        .await?;
    let after = rank_cursor(&request.page.cursor)?;
    let limit = request.page.effective_limit() as usize;
    let new_only = request.new_only;
    runs.store
        .read(move |conn| {
            let keep =
                |new_signature: bool, regression: bool| !new_only || new_signature || regression;
            let (items, next) = failure_groups(conn, &run, &baseline, keep, after, limit)?;
            Ok::<_, Error>(Page {
                items,
                next_cursor: next.map(encode_rank),
            })
        })
        .await
}

/// What a finished run brought that notifications tell of: its failures with a
/// signature first seen in it, and its flaky tests.
pub async fn run_news(runs: Runs, request: RunRef) -> Result<RunNews, Error> {
    runs.store
        .read(move |conn| {
            let run = runs_store::run(conn, request.run_id)?.ok_or(Error::NotFound("run"))?;
            let first_seen_here = |new_signature: bool, _regression: bool| new_signature;
            let (new_failures, _) = failure_groups(
                conn,
                &run,
                BRANCH_ATTRIBUTE,
                first_seen_here,
                None,
                MAX_NEWS,
            )?;
            let mut flaky_tests = Vec::new();
            for outcome in runs_store::outcomes_of_run(conn, run.rid)? {
                if flaky_tests.len() == MAX_NEWS {
                    break;
                }
                if outcome.status == ResultStatus::Passed && outcome.failed_earlier {
                    flaky_tests
                        .extend(store::test_by_tid(conn, outcome.test)?.map(|test| test.test_key));
                }
            }
            flaky_tests.sort_unstable();
            Ok(RunNews {
                new_failures,
                flaky_tests,
            })
        })
        .await
}

/// A run's failures grouped by signature, most failures (then regressions) first:
/// the groups after `after`, at most `limit`, and the rank to continue from. `keep`
/// says, from whether a failure's signature was first seen in the run and whether its
/// test passed in the previous run of `baseline`, whether the failure counts.
fn failure_groups(
    conn: &Connection,
    run: &RunRow,
    baseline: &str,
    keep: impl Fn(bool, bool) -> bool,
    after: Option<Rank>,
    limit: usize,
) -> Result<(Vec<FailureGroup>, Option<Rank>), Error> {
    let previous = store::previous_run(conn, run, baseline)?;
    struct Group {
        sid: i64,
        failures: u64,
        tests: Vec<i64>,
        regressions: HashSet<i64>,
        new_signature: bool,
    }
    let mut groups: HashMap<i64, Group> = HashMap::new();
    let mut first_runs: HashMap<i64, i64> = HashMap::new();
    for failure in store::failures_of_run(conn, run.rid)? {
        let first_run = match first_runs.get(&failure.signature) {
            Some(&first_run) => first_run,
            None => {
                let first_run = store::signature(conn, failure.signature)?
                    .map_or(0, |signature| signature.first_run);
                first_runs.insert(failure.signature, first_run);
                first_run
            }
        };
        let new_signature = first_run == run.rid;
        let regression = match &previous {
            Some((previous, _)) => store::outcome_in_run(conn, *previous, failure.test)?
                .is_some_and(|outcome| outcome.status == ResultStatus::Passed),
            None => false,
        };
        if !keep(new_signature, regression) {
            continue;
        }
        let group = groups.entry(failure.signature).or_insert(Group {
            sid: failure.signature,
            failures: 0,
            tests: Vec::new(),
            regressions: HashSet::new(),
            new_signature,
        });
        group.failures += 1;
        if !group.tests.contains(&failure.test) {
            group.tests.push(failure.test);
        }
        if regression {
            group.regressions.insert(failure.test);
        }
    }
    let (page, next) = rank_page(
        groups.into_values().collect(),
        |group| Rank::new(group.failures, group.regressions.len() as u64, group.sid),
        after,
        limit,
    );
    let mut items = Vec::with_capacity(page.len());
    for mut group in page {
        let Some(signature) = store::signature(conn, group.sid)? else {
            continue;
        };
        group.tests.sort_unstable();
        let mut test_keys = Vec::new();
        for &test in group.tests.iter().take(MAX_GROUP_TESTS) {
            test_keys.extend(store::test_by_tid(conn, test)?.map(|test| test.test_key));
        }
        items.push(FailureGroup {
            signature: signature.hash,
            pattern: signature.pattern,
            example: signature.example,
            failures: group.failures,
            test_keys,
            new_signature: group.new_signature,
            regressions: group.regressions.len() as u64,
            baseline_run_id: previous.as_ref().map(|(_, id)| *id),
        });
    }
    Ok((items, next))
}

/// The failed results with one signature, newest run first.
pub async fn signature_results(
    runs: Runs,
    principal: Principal,
    request: SignatureResults,
) -> Result<Page<TestResult>, Error> {
    let access = runs
        .authorize(&principal, &request.project, Role::Viewer)
        .await?;
    if !is_signature_id(&request.signature) {
        return Err(Error::NotFound("signature"));
    }
    let after = queries::cursor(&request.page.cursor, 3)?
        .map(|mut parts| {
            let id = parts.pop().unwrap_or_default();
            let rid = parts.pop().and_then(|rid| rid.parse().ok());
            let at = parts.pop().and_then(|at| at.parse().ok());
            match (at, rid) {
                (Some(at), Some(rid)) => Ok((at, rid, id)),
                _ => Err(not_ours()),
            }
        })
        .transpose()?;
    let limit = request.page.effective_limit();
    let rows = runs
        .store
        .read(move |conn| {
            let signature = store::signature_by_hash(conn, access.project_id, &request.signature)?
                .ok_or(Error::NotFound("signature"))?;
            Ok::<_, Error>(store::signature_results(
                conn,
                signature.sid,
                after,
                limit + 1,
            )?)
        })
        .await?;
    Ok(Page::from_overfetched(
        rows,
        limit,
        |row| {
            encode_cursor(&[
                &row.run_started_at.to_string(),
                &row.rid.to_string(),
                &row.result.row.id,
            ])
        },
        |row| result_out(row.run_id, row.result),
    ))
}

// ---- quarantine -------------------------------------------------------------------------

/// The reason and end of a quarantine, checked: `until` must lie ahead of `now`.
fn checked_quarantine(request: &QuarantineRequest, now: i64) -> Result<Option<i64>, Error> {
    let reason = &request.reason;
    if reason.trim().is_empty() || reason.len() > MAX_REASON_BYTES {
        return Err(bad(format!(
            "reason: must be 1 to {MAX_REASON_BYTES} bytes and not blank"
        )));
    }
    if reason.chars().any(|c| c.is_control() && c != '\n') {
        return Err(bad("reason: must not contain control characters".into()));
    }
    let until = request
        .until
        .as_deref()
        .map(|until| parse_rfc3339("until", until))
        .transpose()?;
    if until.is_some_and(|until| until <= now) {
        return Err(bad("until: must be in the future".into()));
    }
    Ok(until)
}

fn quarantine_out(test_key: String, row: QuarantineRow) -> Quarantine {
    Quarantine {
        test_key,
        reason: row.reason,
        until: row.until.map(convert::rfc3339),
        by: row.by,
        at: convert::rfc3339(row.at),
    }
}

/// The quarantine, unless it has ended by itself.
fn active(row: Option<QuarantineRow>, now: i64) -> Option<QuarantineRow> {
    row.filter(|row| row.until.is_none_or(|until| until > now))
}

/// Quarantines a test (maintainer): its failures stop failing runs.
pub async fn set_quarantine(
    runs: Runs,
    principal: Principal,
    request: SetQuarantine,
) -> Result<Quarantine, Error> {
    let key = test_key(&request.test_key)?;
    let now = Timestamp::now().millis();
    let until = checked_quarantine(&request.quarantine, now)?;
    let access = runs
        .authorize(&principal, &request.project, Role::Maintainer)
        .await?;
    let row = QuarantineRow {
        reason: request.quarantine.reason,
        until,
        by: actor(&principal),
        at: now,
    };
    runs.store
        .write(move |conn| {
            let tx = conn.transaction()?;
            let test = known_test(&tx, access.project_id, &key)?;
            store::set_quarantine(&tx, access.project_id, test.tid, &row)?;
            tx.commit()?;
            Ok::<_, Error>(quarantine_out(test.test_key, row))
        })
        .await
}

/// Releases a test from quarantine (maintainer).
pub async fn release_quarantine(
    runs: Runs,
    principal: Principal,
    request: TestRef,
) -> Result<Empty, Error> {
    let key = test_key(&request.test_key)?;
    let access = runs
        .authorize(&principal, &request.project, Role::Maintainer)
        .await?;
    let by = actor(&principal);
    runs.store
        .write(move |conn| {
            let tx = conn.transaction()?;
            let test = known_test(&tx, access.project_id, &key)?;
            if !store::release_quarantine(&tx, test.tid, &by, Timestamp::now().millis())? {
                return Err(Error::NotFound("quarantine"));
            }
            tx.commit()?;
            Ok(Empty {})
        })
        .await
}

/// A test's quarantine and its audit trail.
pub async fn get_quarantine(
    runs: Runs,
    principal: Principal,
    request: TestRef,
) -> Result<QuarantineState, Error> {
    let key = test_key(&request.test_key)?;
    let access = runs
        .authorize(&principal, &request.project, Role::Viewer)
        .await?;
    runs.store
        .read(move |conn| {
            let test = known_test(conn, access.project_id, &key)?;
            let quarantine = active(
                store::quarantine(conn, test.tid)?,
                Timestamp::now().millis(),
            );
            let audit = store::audit_trail(conn, test.tid)?
                .into_iter()
                .map(|row| QuarantineEvent {
                    action: row.action,
                    reason: row.reason,
                    until: row.until.map(convert::rfc3339),
                    by: row.by,
                    at: convert::rfc3339(row.at),
                })
                .collect();
            Ok::<_, Error>(QuarantineState {
                quarantine: quarantine.map(|row| quarantine_out(test.test_key.clone(), row)),
                test_key: test.test_key,
                audit,
            })
        })
        .await
}

// ---- the catalog, trends and the slowest tests ----------------------------------------------

/// A search as a LIKE pattern: the words as typed, `%`, `_` and `\` taken literally.
fn like_pattern(q: &str) -> Result<Option<String>, Error> {
    Ok(SearchText::parse(q)?.map(|search| {
        let mut pattern = String::from("%");
        for c in search.as_str().chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }))
}

/// A project's tests (or its quarantined ones) in the order they were first reported,
/// each with its last status, flake rate and p95 duration over its latest runs.
pub async fn list_tests(
    runs: Runs,
    principal: Principal,
    request: ListTests,
) -> Result<Page<CatalogTest>, Error> {
    let pattern = request
        .q
        .as_deref()
        .map(like_pattern)
        .transpose()?
        .flatten();
    let access = runs
        .authorize(&principal, &request.project, Role::Viewer)
        .await?;
    let after = match queries::cursor(&request.page.cursor, 1)? {
        Some(parts) => parts[0].parse().map_err(|_| not_ours())?,
        None => 0,
    };
    let filter = store::CatalogFilter {
        pattern,
        quarantined: request.quarantined,
        after,
    };
    let limit = request.page.effective_limit();
    let now = Timestamp::now().millis();
    let rows = runs
        .store
        .read(move |conn| {
            let rows = store::catalog(conn, access.project_id, &filter, limit + 1)?;
            let mut items = Vec::with_capacity(rows.len());
            for row in rows {
                let outcomes = store::recent_outcomes(conn, row.test.tid, CATALOG_RUNS)?;
                items.push((row, outcomes));
            }
            Ok::<_, Error>(items)
        })
        .await?;
    Ok(Page::from_overfetched(
        rows,
        limit,
        |(row, _)| encode_cursor(&[&row.test.tid.to_string()]),
        |(row, outcomes)| {
            let by_run: Vec<Vec<OutcomeRow>> = outcomes
                .iter()
                .map(|outcome| {
                    vec![OutcomeRow {
                        test: row.test.tid,
                        status: outcome.status,
                        failed_earlier: outcome.failed_earlier,
                    }]
                })
                .collect();
            let flake_rate = flaky::flaky_tests(&by_run)
                .first()
                .map_or(0.0, |found| found.flake_rate);
            let mut durations: Vec<u64> = outcomes.iter().filter_map(|o| o.duration_ms).collect();
            durations.sort_unstable();
            let latest = outcomes.first();
            CatalogTest {
                last_status: latest.map(|o| o.status),
                last_run_at: latest.map(|o| convert::rfc3339(o.run_started_at)),
                flake_rate,
                p95_duration_ms: percentile(&durations, 95),
                quarantine: active(row.quarantine, now)
                    .map(|q| quarantine_out(row.test.test_key.clone(), q)),
                test_key: row.test.test_key,
                name: row.test.name,
                suite: row.test.suite,
            }
        },
    ))
}

fn stats(test: TestRow, record: TestRecord) -> TestStats {
    TestStats {
        test_key: test.test_key,
        name: test.name,
        suite: test.suite,
        runs: record.runs,
        passed: record.passed,
        pass_rate: record.pass_rate,
        p50_duration_ms: record.p50_duration_ms,
        p95_duration_ms: record.p95_duration_ms,
    }
}

/// One test's pass rate and durations over a window of runs.
pub async fn test_trend(
    runs: Runs,
    principal: Principal,
    request: TestTrend,
) -> Result<TestStats, Error> {
    let key = test_key(&request.test_key)?;
    let filter = window_filter(request.selection, Timestamp::now().millis())?;
    let access = runs
        .authorize(&principal, &request.project, Role::Viewer)
        .await?;
    runs.store
        .read(move |conn| {
            let test = known_test(conn, access.project_id, &key)?;
            let mut outcomes = Vec::new();
            for run in store::window_runs(conn, access.project_id, &filter)? {
                outcomes.extend(
                    store::outcome_in_run(conn, run.rid, test.tid)?
                        .map(|outcome| (outcome.status, outcome.duration_ms)),
                );
            }
            Ok::<_, Error>(stats(test, TestRecord::of(outcomes)))
        })
        .await
}

/// The tests with the highest p95 duration over a window of runs.
pub async fn slowest_tests(
    runs: Runs,
    principal: Principal,
    request: SlowestTests,
) -> Result<Vec<TestStats>, Error> {
    let filter = window_filter(request.selection, Timestamp::now().millis())?;
    let limit = request.limit.clamp(1, verdict_contracts::page::MAX_LIMIT) as usize;
    let access = runs
        .authorize(&principal, &request.project, Role::Viewer)
        .await?;
    runs.store
        .read(move |conn| {
            // One flat list grouped by sorting: a window holds tens of thousands of
            // outcomes, and a map of lists would allocate for each test.
            let mut outcomes: Vec<(i64, ResultStatus, Option<u64>)> = Vec::new();
            for run in store::window_runs(conn, access.project_id, &filter)? {
                outcomes.extend(store::durations_in_run(conn, run.rid)?);
            }
            outcomes.sort_unstable_by_key(|(test, _, duration)| (*test, *duration));
            let records: Vec<(i64, TestRecord)> = outcomes
                .chunk_by(|a, b| a.0 == b.0)
                .map(|of_test| {
                    let record = TestRecord::of_sorted(of_test.iter().map(|(_, s, d)| (*s, *d)));
                    (of_test[0].0, record)
                })
                .filter(|(_, record)| record.p95_duration_ms.is_some())
                .collect();
            let (slowest, _) = rank_page(
                records,
                |(test, record)| {
                    Rank::new(
                        record.p95_duration_ms.unwrap_or(0),
                        record.p50_duration_ms.unwrap_or(0),
                        *test,
                    )
                },
                None,
                limit,
            );
            let mut items = Vec::with_capacity(slowest.len());
            for (test, record) in slowest {
                if let Some(test) = store::test_by_tid(conn, test)? {
                    items.push(stats(test, record));
                }
            }
            Ok::<_, Error>(items)
        })
        .await
}

/// A project's finished runs per UTC day of a window: how many, how many passed, how
/// long they took; oldest day first.
pub async fn project_trend(
    runs: Runs,
    principal: Principal,
    request: ProjectTrend,
) -> Result<Vec<TrendDay>, Error> {
    let filter = window_filter(request.selection, Timestamp::now().millis())?;
    let access = runs
        .authorize(&principal, &request.project, Role::Viewer)
        .await?;
    let window = runs
        .store
        .read(move |conn| Ok::<_, Error>(store::window_runs(conn, access.project_id, &filter)?))
        .await?;
    Ok(trend_days(&window))
}

fn trend_days(window: &[WindowRun]) -> Vec<TrendDay> {
    let mut days: BTreeMap<i64, (u64, u64, i64)> = BTreeMap::new();
    for run in window {
        let day = days.entry(run.started_at.div_euclid(DAY_MS)).or_default();
        day.0 += 1;
        day.1 += u64::from(run.status == verdict_contracts::runs::RunStatus::Passed);
        day.2 += (run.finished_at - run.started_at).max(0);
    }
    days.into_iter()
        .map(|(day, (runs, passed, duration))| TrendDay {
            day: convert::rfc3339(day * DAY_MS)[..10].to_owned(),
            runs,
            passed,
            pass_rate: passed as f64 / runs as f64,
            mean_duration_ms: (duration / runs as i64) as u64,
        })
        .collect()
}

// ---- flakiness ---------------------------------------------------------------------------

/// Tests whose outcome flips across a window of runs, flakiest first, paged.
pub async fn flaky_tests(
    runs: Runs,
    principal: Principal,
    request: FlakyTests,
) -> Result<Page<FlakyTest>, Error> {
    let access = runs
        .authorize(&principal, &request.project, Role::Viewer)
        .await?;
    let filter = window_filter(request.selection, Timestamp::now().millis())?;
    let after = rank_cursor(&request.page.cursor)?;
    let limit = request.page.effective_limit() as usize;
    runs.store
        .read(move |conn| {
            let window = store::window_runs(conn, access.project_id, &filter)?;
            let outcomes = window
                .iter()
                .map(|run| runs_store::outcomes_of_run(conn, run.rid))
                .collect::<Result<Vec<_>, _>>()?;
            let (page, next) = rank_page(
                flaky::flaky_tests(&outcomes),
                |found| {
                    Rank::new(
                        found.flake_rate.to_bits(),
                        u64::from(found.flips),
                        found.test,
                    )
                },
                after,
                limit,
            );
            let mut items = Vec::with_capacity(page.len());
            for found in page {
                let Some(test) = store::test_by_tid(conn, found.test)? else {
                    continue;
                };
                items.push(FlakyTest {
                    last_seen: window
                        .get(found.last_seen)
                        .map(|run| convert::rfc3339(run.started_at))
                        .unwrap_or_default(),
                    test_key: test.test_key,
                    name: test.name,
                    suite: test.suite,
                    flips: found.flips,
                    runs: found.runs,
                    flake_rate: found.flake_rate,
                });
            }
            Ok::<_, Error>(Page {
                items,
                next_cursor: next.map(encode_rank),
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use verdict_contracts::ids::RunId;
    use verdict_contracts::runs::RunStatus;

    #[test]
    fn a_catalog_search_takes_like_wildcards_literally() {
        assert_eq!(
            like_pattern("50%_off\\").unwrap().unwrap(),
            "%50\\%\\_off\\\\%"
        );
        assert_eq!(like_pattern("  ").unwrap(), None);
    }

    #[test]
    fn a_refused_catalog_search_names_q() {
        let refused = like_pattern("a\0").unwrap_err().to_string();
        assert_eq!(refused, "q: must not contain control characters");
    }

    #[test]
    fn a_quarantine_needs_a_reason_and_an_end_ahead() {
        let request = |reason: &str, until: Option<&str>| QuarantineRequest {
            reason: reason.into(),
            until: until.map(Into::into),
        };
        let now = parse_rfc3339("now", "2026-12-06T12:00:00Z").unwrap();
        assert!(checked_quarantine(&request("flaky on CI", None), now).is_ok());
        let blank = checked_quarantine(&request(" ", None), now).unwrap_err();
        assert!(blank.to_string().starts_with("reason:"));
        let past = checked_quarantine(&request("x", Some("2026-12-05T00:00:00Z")), now);
        assert_eq!(
            past.unwrap_err().to_string(),
            "until: must be in the future"
        );
        let long = checked_quarantine(&request(&"r".repeat(MAX_REASON_BYTES + 1), None), now);
        assert!(long.is_err());
    }

    #[test]
    fn runs_are_summed_per_utc_day_oldest_first() {
        let run = |started_at: i64, minutes: i64, status| WindowRun {
            rid: 0,
            id: RunId::generate(),
            status,
            started_at,
            finished_at: started_at + minutes * 60_000,
        };
        let day = parse_rfc3339("d", "2026-12-05T10:00:00Z").unwrap();
        let days = trend_days(&[
            run(day + DAY_MS, 1, RunStatus::Passed),
            run(day, 2, RunStatus::Failed),
            run(day + 60_000, 4, RunStatus::Passed),
        ]);
        let summary: Vec<_> = days
            .iter()
            .map(|d| (d.day.as_str(), d.runs, d.passed, d.mean_duration_ms))
            .collect();
        assert_eq!(
            summary,
            [("2026-12-05", 2, 1, 180_000), ("2026-12-06", 1, 1, 60_000)]
        );
    }
}
