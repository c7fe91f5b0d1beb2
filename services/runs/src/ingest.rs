//! The durable ingest: result batches and finishes from the `VERDICT_INGEST` stream,
//! applied in order. Messages that are ready together are applied in a few short
//! transactions and acknowledged only after they commit, so a crash loses nothing (JetStream delivers the
//! unacknowledged ones again) and a redelivery changes nothing (results upsert by id,
//! and a test's outcome only changes when an attempt says something new).
//!
//! Two rounds of messages are in hand at once, so the writer only applies: the next
//! round is pulled and decoded, and the last one's events published, while it does.
//! Turns keep the rounds in the order they were pulled, for applying and for announcing.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use verdict_bus::consume::{self, Delivery, Verdict, WorkQueue};
use verdict_bus::turns::{Turn, Turns};
use verdict_contracts::events::{Event, FinishedTest};
use verdict_contracts::ids::{ProjectId, RunId};
use verdict_contracts::runs::{FinishRun, IngestMessage, RunStatus};
use verdict_contracts::streams;
use verdict_contracts::Timestamp;
use verdict_store::rusqlite::{Connection, Transaction};

use crate::context::Runs;
use crate::convert::{self};
use crate::domain::{CountsDelta, NewResult, Signature, TestOutcome};
use crate::store::{self, KnownTests, ResultRow, ResultWriter, RunRow};
use crate::{finish, live_events, Error};

/// Most messages taken from the stream at once: they are acknowledged together once
/// all are applied, which must take well under the stall warning's 5 s even on a busy
/// machine.
const MAX_MESSAGES_PER_ROUND: usize = 16;
/// The most work in one transaction: results become visible at least this often while a
/// backlog is applied (issue #20), and a commit in WAL mode costs little next to it.
const COMMIT_EVERY: Duration = Duration::from_millis(250);
/// How long a batch whose transaction failed waits before it is delivered again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Applies ingest messages until `shutdown`; the rounds in hand when it fires are
/// finished and acknowledged first.
pub async fn consume(
    runs: Runs,
    stream: streams::StreamSpec,
    ack_wait: Duration,
    replicas: usize,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let queue = WorkQueue {
        stream,
        consumer: streams::INGEST_CONSUMER,
        filter: None,
        ack_wait,
        max_batch: MAX_MESSAGES_PER_ROUND,
        rounds_in_flight: 2,
        replicas,
    };
    let client = runs.client().clone();
    let mut applying = Turns::default();
    let mut announcing = Turns::default();
    consume::consume(
        &client,
        queue,
        |deliveries| {
            let turns = RoundTurns {
                apply: applying.take(),
                announce: announcing.take(),
            };
            apply_round(runs.clone(), deliveries, turns)
        },
        shutdown,
    )
    .await?;
    Ok(())
}

/// A round's places in the order of rounds: to apply it, and to publish its events.
struct RoundTurns {
    apply: Turn,
    announce: Turn,
}

/// Decodes every message of one round, applies them in the round's turn, then publishes
/// the events they made in its turn; the verdicts say what to acknowledge.
async fn apply_round(runs: Runs, deliveries: Vec<Delivery>, turns: RoundTurns) -> Vec<Verdict> {
    let span = tracing::info_span!("runs.ingest.apply", messages = deliveries.len());
    verdict_bus::trace::continue_all(&span, deliveries.iter().map(|delivery| &delivery.trace));
    apply_and_announce(runs, deliveries, turns)
        .instrument(span)
        .await
}

async fn apply_and_announce(
    runs: Runs,
    deliveries: Vec<Delivery>,
    turns: RoundTurns,
) -> Vec<Verdict> {
    let count = deliveries.len();
    // Decoding tens of thousands of results is CPU work: it happens on the blocking
    // pool, while the writer applies the round before, rather than stalling an async
    // thread.
    let decoded = tokio::task::spawn_blocking(move || decode(&deliveries)).await;
    turns.apply.wait().await;
    let started = Instant::now();
    let known = runs.known_tests.clone();
    let applied = match decoded {
        Ok(decoded) => {
            runs.store
                .write(move |conn| {
                    let mut known = known.lock().unwrap_or_else(|p| p.into_inner());
                    Ok::<_, Error>(apply_deliveries(
                        conn,
                        &mut known,
                        decoded,
                        Timestamp::now().millis(),
                        COMMIT_EVERY,
                    ))
                })
                .await
        }
        Err(err) => Err(Error::Store(verdict_store::StoreError::Task(err))),
    };
    metrics::histogram!(crate::metrics::INGEST_APPLY_DURATION)
        .record(started.elapsed().as_secs_f64());
    turns.announce.wait().await;
    drop(turns.apply);
    match applied {
        Ok(Applied { events, verdicts }) => {
            for event in &events {
                runs.publish(event).await;
            }
            verdicts
        }
        Err(err) => {
            tracing::error!(error = %err, "applying an ingest batch failed; it will be delivered again");
            vec![Verdict::Retry(RETRY_AFTER_FAILURE); count]
        }
    }
}

/// The messages of a round that decoded, each with its place in the round, and one
/// verdict per message (so far).
struct Decoded {
    messages: Vec<(usize, IngestMessage)>,
    verdicts: Vec<Verdict>,
}

/// Decodes every message; one that does not decode is rejected.
fn decode(deliveries: &[Delivery]) -> Decoded {
    let mut verdicts = Vec::with_capacity(deliveries.len());
    let mut messages = Vec::with_capacity(deliveries.len());
    for (index, delivery) in deliveries.iter().enumerate() {
        match serde_json::from_slice::<IngestMessage>(&delivery.payload) {
            Ok(message) => {
                messages.push((index, message));
                verdicts.push(Verdict::Done);
            }
            Err(err) => {
                // The gateway only publishes what it validated; this is not ours to retry.
                tracing::error!(error = %err, subject = %delivery.subject, "dropping a malformed ingest message");
                verdicts.push(Verdict::Reject);
            }
        }
    }
    Decoded { messages, verdicts }
}

/// What applying a round did: the events to publish, and one verdict per message.
struct Applied {
    events: Vec<Event>,
    verdicts: Vec<Verdict>,
}

/// Applies the decoded messages in order, in transactions of at most `commit_every`
/// of work each. A transaction that fails is rolled back, and its
/// messages and every later one are delivered again; the ones committed before it are
/// done, so they are never applied twice.
fn apply_deliveries(
    conn: &mut Connection,
    known: &mut KnownTests,
    decoded: Decoded,
    now: i64,
    commit_every: Duration,
) -> Applied {
    let Decoded {
        messages,
        mut verdicts,
    } = decoded;
    let mut events = Vec::new();
    let mut pending = messages.into_iter().peekable();
    while pending.peek().is_some() {
        let mut taken = Vec::new();
        match apply_transaction(conn, known, &mut pending, &mut taken, now, commit_every) {
            Ok(applied) => events.extend(applied),
            Err(err) => {
                tracing::error!(error = %err, "applying ingest messages failed; they will be delivered again");
                for index in taken.into_iter().chain(pending.map(|(index, _)| index)) {
                    verdicts[index] = Verdict::Retry(RETRY_AFTER_FAILURE);
                }
                break;
            }
        }
    }
    Applied { events, verdicts }
}

/// Applies messages from `pending` in one transaction until it holds `commit_every` of
/// work or none are left; `taken` receives the index of each message it took.
fn apply_transaction(
    conn: &mut Connection,
    known: &mut KnownTests,
    pending: &mut impl Iterator<Item = (usize, IngestMessage)>,
    taken: &mut Vec<usize>,
    now: i64,
    commit_every: Duration,
) -> Result<Vec<Event>, Error> {
    let started = Instant::now();
    let tx = conn.transaction()?;
    let mut events = Vec::new();
    let mut batches = 0;
    let mut results = 0;
    let learned = {
        let mut writer = ResultWriter::new(&tx, known)?;
        for (index, message) in pending.by_ref() {
            taken.push(index);
            if let IngestMessage::Results { results: batch, .. } = &message {
                batches += 1;
                results += batch.len() as u64;
            }
            events.extend(apply_message(&tx, &mut writer, message, now)?);
            if started.elapsed() >= commit_every {
                break;
            }
        }
        writer.finish()?
    };
    tx.commit()?;
    known.learn(learned);
    metrics::counter!(crate::metrics::INGEST_BATCHES_APPLIED).increment(batches);
    metrics::counter!(crate::metrics::INGEST_RESULTS_APPLIED).increment(results);
    Ok(events)
}

fn apply_message(
    tx: &Transaction<'_>,
    writer: &mut ResultWriter<'_>,
    message: IngestMessage,
    now: i64,
) -> Result<Vec<Event>, Error> {
    match message {
        IngestMessage::Results {
            project_id,
            run_id,
            results,
        } => match live_run(tx, project_id, run_id)? {
            Some(run) => apply_results(tx, writer, run, results, now),
            None => Ok(Vec::new()),
        },
        IngestMessage::Finish {
            project_id,
            run_id,
            finish,
            accepted_at,
        } => match live_run(tx, project_id, run_id)? {
            Some(run) => apply_finish(tx, run, &finish, &accepted_at),
            None => Ok(Vec::new()),
        },
    }
}

/// The run a message is for, unless it was deleted meanwhile (or the message names the
/// wrong project, which the gateway never does).
fn live_run(
    tx: &Transaction<'_>,
    project_id: ProjectId,
    run_id: RunId,
) -> Result<Option<RunRow>, Error> {
    let run = store::run(tx, run_id)?;
    Ok(match run {
        Some(run) if run.project_id == project_id => Some(run),
        Some(_) => {
            tracing::error!(
                %run_id,
                %project_id,
                "ingest message names the wrong project; dropped"
            );
            None
        }
        None => {
            tracing::debug!(%run_id, "ingest message for a deleted run; dropped");
            None
        }
    })
}

fn apply_results(
    tx: &Transaction<'_>,
    writer: &mut ResultWriter<'_>,
    run: RunRow,
    results: Vec<NewResult>,
    now: i64,
) -> Result<Vec<Event>, Error> {
    let mut batch = Batch::new(&run, results.len());
    for result in results {
        batch.apply(writer, result)?;
    }
    batch.finish(tx, now)
}

/// Results being applied to one run in one transaction: the counter changes and the
/// tests to announce add up here.
pub struct Batch<'run> {
    run: &'run RunRow,
    delta: CountsDelta,
    tests: Vec<FinishedTest>,
}

impl<'run> Batch<'run> {
    pub fn new(run: &'run RunRow, expected: usize) -> Self {
        Self {
            run,
            delta: CountsDelta::default(),
            tests: Vec::with_capacity(expected),
        }
    }

    /// Stores one checked result: the test's outcome in the run, the result itself.
    pub fn apply(
        &mut self,
        writer: &mut ResultWriter<'_>,
        checked: NewResult,
    ) -> Result<(), Error> {
        let run = self.run;
        let test_key = checked.test_key().to_string();
        let id = checked
            .id
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let test = writer.test(
            run,
            &test_key,
            checked.suite.as_ref().map(|s| s.as_str()),
            checked.name.as_str(),
        )?;
        let duration = checked.duration_ms.map(|d| d.get());
        let message = checked.message.as_ref().map(|text| text.as_str());
        // Most results are their test's first in the run: one insert settles them.
        let first = TestOutcome::record(None, checked.attempt, checked.status);
        let seen_before = !writer.first_outcome(run, test, &first.outcome, duration, message)?;
        let change = if !seen_before {
            first
        } else {
            let previous = writer.outcome(run, test)?;
            let change = TestOutcome::record(previous, checked.attempt, checked.status);
            if previous != Some(change.outcome) {
                writer.save_outcome(run, test, &change.outcome, duration, message)?;
            }
            change
        };
        self.delta.add(&change.delta);
        let row = ResultRow {
            id,
            test_key,
            suite: checked.suite.map(|s| s.as_str().to_owned()),
            name: checked.name.as_str().to_owned(),
            status: checked.status,
            attempt: checked.attempt.get(),
            duration_ms: checked.duration_ms.map(|d| d.get()),
            started_at: checked.started_at.map(|at| Timestamp::of(at).millis()),
            message: checked.message.map(|t| t.as_str().to_owned()),
            trace: checked.trace.map(|t| t.as_str().to_owned()),
            stdout: checked.stdout.map(|t| t.as_str().to_owned()),
            stderr: checked.stderr.map(|t| t.as_str().to_owned()),
            attributes: (!checked.attributes.is_empty()).then(|| {
                let map: std::collections::BTreeMap<&str, &str> =
                    checked.attributes.iter().collect();
                serde_json::to_string(&map).unwrap_or_default()
            }),
        };
        writer.upsert(run, test, &row)?;
        // Only a test seen before in the run can have a failure to forget.
        if row.status.is_failure() || seen_before {
            let signature = row
                .status
                .is_failure()
                .then(|| Signature::of(row.message.as_deref(), row.trace.as_deref()));
            writer.record_failure(run, test, &row, signature.as_ref())?;
        }
        self.tests.push(FinishedTest {
            id: row.id,
            test_key: row.test_key,
            suite: row.suite,
            name: row.name,
            status: row.status,
            attempt: row.attempt,
            duration_ms: row.duration_ms,
        });
        Ok(())
    }

    /// Adds the counter changes to the run; returns the events announcing the batch.
    pub fn finish(self, tx: &Transaction<'_>, now: i64) -> Result<Vec<Event>, Error> {
        let run = self.run;
        store::add_counts(tx, run, &self.delta, now)?;
        let mut counts = run.counts;
        counts.apply(self.delta);
        let mut events = live_events::test_finished(run.project_id, run.id, self.tests);
        events.push(Event::RunProgress {
            project_id: run.project_id,
            run_id: run.id,
            status: run.status,
            counts,
        });
        Ok(events)
    }
}

fn apply_finish(
    tx: &Transaction<'_>,
    run: RunRow,
    finish: &FinishRun,
    accepted_at: &str,
) -> Result<Vec<Event>, Error> {
    let at = match &finish.finished_at {
        Some(text) => convert::parse_rfc3339("finished_at", text)?,
        None => convert::parse_rfc3339("accepted_at", accepted_at)?,
    };
    let interrupted = finish.status == Some(RunStatus::Interrupted);
    finish::record(tx, &run, finish.shard.as_deref(), at, interrupted)?;
    Ok(finish::settle(tx, run.id, at)?.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PROJECT: &str = "0192a24d-0000-7000-8000-0000000000ff";
    const RUN: &str = "0192a24d-0000-7000-8000-000000000001";

    fn conn_with_a_running_run() -> Connection {
        let mut conn = store::MIGRATIONS.in_memory().unwrap();
        let mut run = RunRow {
            rid: 0,
            id: RUN.parse().unwrap(),
            project_id: PROJECT.parse().unwrap(),
            name: "nightly".into(),
            status: RunStatus::Running,
            attributes: Default::default(),
            started_at: 1,
            finished_at: None,
            counts: Default::default(),
            build_key: None,
            finishing: Default::default(),
        };
        let tx = conn.transaction().unwrap();
        store::insert_run(&tx, &mut run).unwrap();
        tx.commit().unwrap();
        conn
    }

    fn delivery(message: serde_json::Value) -> Delivery {
        Delivery {
            subject: "ingest".into(),
            payload: serde_json::to_vec(&message).unwrap().into(),
            delivered: 1,
            trace: Default::default(),
        }
    }

    fn one_result(name: &str) -> Delivery {
        delivery(json!({
            "type": "results", "project_id": PROJECT, "run_id": RUN,
            "results": [{ "name": name, "status": "passed" }],
        }))
    }

    /// A finish the gateway would never send: applying it fails.
    fn unappliable_finish() -> Delivery {
        delivery(json!({
            "type": "finish", "project_id": PROJECT, "run_id": RUN,
            "finish": { "finished_at": "yesterday" }, "accepted_at": "2026-12-06T10:00:00Z",
        }))
    }

    fn results_stored(conn: &Connection) -> u64 {
        store::run(conn, RUN.parse().unwrap())
            .unwrap()
            .unwrap()
            .counts
            .total
    }

    const RETRY: Verdict = Verdict::Retry(RETRY_AFTER_FAILURE);

    #[test]
    fn messages_before_a_failed_transaction_stay_applied_and_are_not_retried() {
        let mut conn = conn_with_a_running_run();
        let deliveries = [one_result("a"), unappliable_finish(), one_result("b")];

        let applied = apply_deliveries(
            &mut conn,
            &mut KnownTests::default(),
            decode(&deliveries),
            1,
            Duration::ZERO,
        );

        assert_eq!(applied.verdicts, [Verdict::Done, RETRY, RETRY]);
        assert_eq!(results_stored(&conn), 1);
    }

    #[test]
    fn messages_in_the_failed_transaction_are_all_retried_and_none_stays_applied() {
        let mut conn = conn_with_a_running_run();
        let deliveries = [one_result("a"), unappliable_finish(), one_result("b")];

        let applied = apply_deliveries(
            &mut conn,
            &mut KnownTests::default(),
            decode(&deliveries),
            1,
            Duration::from_secs(60),
        );

        assert_eq!(applied.verdicts, [RETRY, RETRY, RETRY]);
        assert_eq!(results_stored(&conn), 0);
    }

    #[test]
    fn a_test_first_seen_in_a_rolled_back_transaction_is_stored_when_applied_again() {
        let mut conn = conn_with_a_running_run();
        let mut known = KnownTests::default();
        let failing = [one_result("a"), unappliable_finish()];
        apply_deliveries(
            &mut conn,
            &mut known,
            decode(&failing),
            1,
            Duration::from_secs(60),
        );

        let applied = apply_deliveries(
            &mut conn,
            &mut known,
            decode(&[one_result("a")]),
            1,
            COMMIT_EVERY,
        );

        assert_eq!(applied.verdicts, [Verdict::Done]);
        assert_eq!(results_stored(&conn), 1);
    }

    #[test]
    fn a_test_seen_before_is_found_again_in_later_transactions() {
        let mut conn = conn_with_a_running_run();
        let mut known = KnownTests::default();
        apply_deliveries(
            &mut conn,
            &mut known,
            decode(&[one_result("a")]),
            1,
            COMMIT_EVERY,
        );

        apply_deliveries(
            &mut conn,
            &mut known,
            decode(&[one_result("a")]),
            1,
            COMMIT_EVERY,
        );

        let tests: i64 = conn
            .query_row("SELECT count(*) FROM tests", [], |row| row.get(0))
            .unwrap();
        assert_eq!(tests, 1);
        assert_eq!(results_stored(&conn), 1);
    }

    #[test]
    fn a_malformed_message_is_rejected_and_the_others_applied() {
        let mut conn = conn_with_a_running_run();
        let deliveries = [one_result("a"), delivery(json!({ "type": "nonsense" }))];

        let applied = apply_deliveries(
            &mut conn,
            &mut KnownTests::default(),
            decode(&deliveries),
            1,
            COMMIT_EVERY,
        );

        assert_eq!(applied.verdicts, [Verdict::Done, Verdict::Reject]);
        assert_eq!(results_stored(&conn), 1);
    }
}
