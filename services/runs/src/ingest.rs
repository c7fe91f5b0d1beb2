//! The durable ingest: result batches and finishes from the `VERDICT_INGEST` stream,
//! applied in order. Messages that are ready together are applied in one transaction and
//! acknowledged only after it commits, so a crash loses nothing (JetStream delivers the
//! unacknowledged ones again) and a redelivery changes nothing (results upsert by id,
//! and a test's outcome only changes when an attempt says something new).

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use verdict_bus::consume::{self, Delivery, Verdict, WorkQueue};
use verdict_contracts::events::{Event, FinishedTest};
use verdict_contracts::runs::{FinishRun, IngestMessage, ResultInput, RunStatus};
use verdict_contracts::streams;
use verdict_store::rusqlite::{Connection, Transaction};

use crate::context::Runs;
use crate::convert::{self, now_ms};
use crate::domain::{finished_status, CountsDelta, FinishReason, NewResult, TestOutcome};
use crate::store::{self, ResultRow, ResultWriter, RunRow};
use crate::{live_events, Error};

/// Most messages applied in one transaction.
const MAX_MESSAGES_PER_TRANSACTION: usize = 64;
/// How long a batch whose transaction failed waits before it is delivered again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Applies ingest messages until `shutdown`; the batch in hand when it fires is finished
/// and acknowledged first.
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
        max_batch: MAX_MESSAGES_PER_TRANSACTION,
        replicas,
    };
    let client = runs.client().clone();
    consume::consume(
        &client,
        queue,
        |deliveries| apply_batch(runs.clone(), deliveries),
        shutdown,
    )
    .await?;
    Ok(())
}

/// Applies every message of one delivery in one transaction, then publishes the events
/// it made; the verdicts say what to acknowledge.
async fn apply_batch(runs: Runs, deliveries: Vec<Delivery>) -> Vec<Verdict> {
    let count = deliveries.len();
    // Decoding tens of thousands of results is CPU work: it happens with the apply, on
    // the blocking pool, rather than stalling an async thread.
    let applied = runs
        .store
        .write(move |conn| {
            let mut decoded = Vec::with_capacity(deliveries.len());
            let mut verdicts = Vec::with_capacity(deliveries.len());
            for delivery in &deliveries {
                match serde_json::from_slice::<IngestMessage>(&delivery.payload) {
                    Ok(ingest) => {
                        decoded.push(ingest);
                        verdicts.push(Verdict::Done);
                    }
                    Err(err) => {
                        // The gateway only publishes what it validated; this is not
                        // ours to retry.
                        tracing::error!(error = %err, subject = %delivery.subject, "dropping a malformed ingest message");
                        verdicts.push(Verdict::Reject);
                    }
                }
            }
            let events = if decoded.is_empty() {
                Vec::new()
            } else {
                apply_all(conn, decoded, now_ms())?
            };
            Ok::<_, Error>((events, verdicts))
        })
        .await;
    match applied {
        Ok((events, verdicts)) => {
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

/// Applies every message in one transaction; returns the events to publish.
pub fn apply_all(
    conn: &mut Connection,
    messages: Vec<IngestMessage>,
    now: i64,
) -> Result<Vec<Event>, Error> {
    let tx = conn.transaction()?;
    let mut events = Vec::new();
    {
        let mut writer = ResultWriter::new(&tx)?;
        for message in messages {
            match message {
                IngestMessage::Results {
                    project_id,
                    run_id,
                    results,
                } => {
                    if let Some(run) = live_run(&tx, &project_id, &run_id)? {
                        events.extend(apply_results(&tx, &mut writer, run, results, now)?);
                    }
                }
                IngestMessage::Finish {
                    project_id,
                    run_id,
                    finish,
                    accepted_at,
                } => {
                    if let Some(run) = live_run(&tx, &project_id, &run_id)? {
                        events.extend(apply_finish(&tx, run, &finish, &accepted_at)?);
                    }
                }
            }
        }
    }
    tx.commit()?;
    Ok(events)
}

/// The run a message is for, unless it was deleted meanwhile (or the message names the
/// wrong project, which the gateway never does).
fn live_run(tx: &Transaction<'_>, project_id: &str, run_id: &str) -> Result<Option<RunRow>, Error> {
    let run = store::run(tx, run_id)?;
    Ok(match run {
        Some(run) if run.project_id == project_id => Some(run),
        Some(_) => {
            tracing::error!(
                run_id,
                project_id,
                "ingest message names the wrong project; dropped"
            );
            None
        }
        None => {
            tracing::debug!(run_id, "ingest message for a deleted run; dropped");
            None
        }
    })
}

fn apply_results(
    tx: &Transaction<'_>,
    writer: &mut ResultWriter<'_>,
    run: RunRow,
    results: Vec<ResultInput>,
    now: i64,
) -> Result<Vec<Event>, Error> {
    let mut batch = Batch::new(&run, results.len());
    for (index, input) in results.into_iter().enumerate() {
        match input.validate(&format!("results[{index}]")) {
            Ok(checked) => batch.apply(writer, checked)?,
            Err(errors) => {
                tracing::error!(run_id = %run.id, %errors, "dropping a result that fails validation")
            }
        }
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
        let previous = writer.outcome(run, test)?;
        let change = TestOutcome::record(previous, checked.attempt, checked.status);
        if previous != Some(change.outcome) {
            let duration = checked.duration_ms.map(|d| d.get());
            let message = checked.message.as_ref().map(|text| text.as_str());
            writer.save_outcome(run, test, &change.outcome, duration, message)?;
        }
        self.delta.add(&change.delta);
        let row = ResultRow {
            id,
            test_key,
            suite: checked.suite.map(|s| s.as_str().to_owned()),
            name: checked.name.as_str().to_owned(),
            status: checked.status,
            attempt: checked.attempt.get(),
            duration_ms: checked.duration_ms.map(|d| d.get()),
            started_at: checked.started_at.map(convert::ms_of),
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
        let mut events = live_events::test_finished(&run.project_id, &run.id, self.tests);
        events.push(Event::RunProgress {
            project_id: run.project_id.clone(),
            run_id: run.id.clone(),
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
    if run.finished_at.is_some() {
        return Ok(Vec::new());
    }
    let finished_at = match &finish.finished_at {
        Some(text) => convert::parse_rfc3339("finished_at", text)?,
        None => convert::parse_rfc3339("accepted_at", accepted_at)?,
    };
    let reason = match finish.status {
        Some(RunStatus::Interrupted) => FinishReason::Interrupted,
        _ => FinishReason::Completed,
    };
    let status = finished_status(&run.counts, reason);
    store::finish_run(tx, &run.id, status, finished_at)?;
    Ok(vec![Event::RunFinished {
        project_id: run.project_id,
        run_id: run.id,
        status,
        counts: run.counts,
        finished_at: convert::rfc3339(finished_at),
    }])
}
