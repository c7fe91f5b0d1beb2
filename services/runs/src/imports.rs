//! Imported reports. The gateway stores the report as an artifact of a new run, then
//! queues the import here; a worker fetches the report from the blob store, reads it
//! whole once without writing (so a malformed report leaves no result behind), then
//! writes it in chunks, releasing the database writer between them (so an import of any
//! size never holds up live ingest or run creation). The queue is a table, so a
//! restart resumes what was queued.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use verdict_contracts::artifacts::{self, ReportRef};
use verdict_contracts::auth::{Principal, Role};
use verdict_contracts::events::Event;
use verdict_contracts::idempotency::Keyed;
use verdict_contracts::runs::{
    self, Counts, CreateImport, CreatedImport, Import, ImportIntoRun, ImportRef, ImportState,
    NewRun, ReportKind, ResultId, RunStatus, StartImport,
};
use verdict_contracts::Timestamp;
use verdict_store::idempotency::{keyed, KeyedRequest, Recall};
use verdict_store::rusqlite::Transaction;

use crate::config::ImportRetries;
use crate::context::Runs;
use crate::convert::{self};
use crate::domain::{FinishReason, NewResult, Tally};
use crate::finish;
use crate::import::{ImportError, ReportItem, ReportReader};
use crate::ingest::Batch;
use crate::run_commands::{self, RunSpec};
use crate::store::{self, ImportRow, ResultWriter, RunRow};
use crate::Error;
use verdict_contracts::ids::ImportId;

/// Wakes the import worker when something is queued.
pub type Wakeup = Arc<Notify>;

fn import_out(row: ImportRow) -> Import {
    Import {
        id: row.id,
        run_id: row.run_id,
        status: row.status,
        error: row.error,
        counts: row.counts.and_then(|json| serde_json::from_str(&json).ok()),
        warnings: row
            .warnings
            .and_then(|json| serde_json::from_str(&json).ok()),
    }
}

/// Creates a run and a pending import into it; its report is stored next, then the
/// import is started. A repeated `Idempotency-Key` gets the import it created, and says
/// whether its report is stored already.
pub async fn create(
    runs: Runs,
    principal: Principal,
    request: Keyed<CreateImport>,
) -> Result<CreatedImport, Error> {
    let access = runs
        .authorize(&principal, &request.request.project, Role::Reporter)
        .await?;
    let keyed = keyed(&principal, &runs::CREATE_IMPORT, &request);
    let format = request.request.format;
    let spec = RunSpec::check(NewRun {
        name: request.request.name,
        attributes: request.request.attributes,
        ..NewRun::default()
    })?;
    let (answer, started) = runs
        .store
        .write(move |conn| {
            let now = Timestamp::now().millis();
            let tx = conn.transaction()?;
            if let Some(answer) = repeated(&tx, keyed.as_ref(), now)? {
                return Ok((answer, None));
            }
            let (run, started) = run_commands::insert(&tx, access.project_id, &spec)?;
            let answer = new_import(&tx, &run, format, false, keyed.as_ref(), now)?;
            tx.commit()?;
            Ok::<_, Error>((answer, Some(started)))
        })
        .await?;
    if let Some(started) = started {
        runs.publish(&started).await;
    }
    Ok(answer)
}

/// Creates a pending import into an existing run: its results are added to the run's,
/// and a finish of the run waits for it.
pub async fn into_run(
    runs: Runs,
    principal: Principal,
    request: Keyed<ImportIntoRun>,
) -> Result<CreatedImport, Error> {
    let keyed = keyed(&principal, &runs::IMPORT_INTO_RUN, &request);
    let run = runs
        .run_for(&principal, request.request.run_id, Role::Reporter)
        .await?;
    let format = request.request.format;
    runs.store
        .write(move |conn| {
            let now = Timestamp::now().millis();
            let tx = conn.transaction()?;
            if let Some(answer) = repeated(&tx, keyed.as_ref(), now)? {
                return Ok(answer);
            }
            let run = store::run(&tx, run.id)?.ok_or(Error::NotFound("run"))?;
            let answer = new_import(&tx, &run, format, true, keyed.as_ref(), now)?;
            tx.commit()?;
            Ok::<_, Error>(answer)
        })
        .await
}

/// The answer a keyed request got before, with whether its report has been stored since.
fn repeated(
    tx: &Transaction<'_>,
    keyed: Option<&KeyedRequest>,
    now: i64,
) -> Result<Option<CreatedImport>, Error> {
    let Some(keyed) = keyed else {
        return Ok(None);
    };
    match keyed.recall::<CreatedImport>(tx, now)? {
        Recall::New => Ok(None),
        Recall::Conflict => Err(Error::KeyReused),
        Recall::Repeat(answer) => {
            let row = store::import(tx, answer.import.id)?.ok_or(Error::NotFound("import"))?;
            Ok(Some(CreatedImport {
                report_stored: row.artifact_id.is_some(),
                ..answer
            }))
        }
    }
}

/// Stores a pending import into `run` and remembers the answer for its key.
fn new_import(
    tx: &Transaction<'_>,
    run: &RunRow,
    format: ReportKind,
    into_run: bool,
    keyed: Option<&KeyedRequest>,
    now: i64,
) -> Result<CreatedImport, Error> {
    let row = ImportRow {
        id: ImportId::generate(),
        run_id: run.id,
        project_id: run.project_id,
        format,
        status: ImportState::Pending,
        error: None,
        counts: None,
        warnings: None,
        artifact_id: None,
        attempts: 0,
        next_attempt_at: None,
        into_run,
    };
    store::insert_import(tx, &row)?;
    let answer = CreatedImport {
        import: import_out(row),
        report_stored: false,
    };
    if let Some(keyed) = keyed {
        keyed.remember(tx, &answer, now)?;
    }
    Ok(answer)
}

async fn visible(
    runs: &Runs,
    principal: &Principal,
    import_id: ImportId,
    needed: Role,
) -> Result<ImportRow, Error> {
    let row = runs
        .store
        .read(move |conn| Ok::<_, Error>(store::import(conn, import_id)?))
        .await?
        .ok_or(Error::NotFound("import"))?;
    runs.authorize(principal, &row.project_id.to_string(), needed)
        .await?;
    Ok(row)
}

pub async fn start(
    runs: Runs,
    principal: Principal,
    request: StartImport,
    wakeup: Wakeup,
) -> Result<Import, Error> {
    let row = visible(&runs, &principal, request.import_id, Role::Reporter).await?;
    let id = row.id;
    let queued = runs
        .store
        .write(move |conn| {
            Ok::<_, Error>(store::queue_import(
                conn,
                id,
                request.artifact_id,
                Timestamp::now().millis(),
            )?)
        })
        .await?;
    if !queued {
        return Err(Error::BadRequest("the import was already started".into()));
    }
    wakeup.notify_one();
    Ok(import_out(row))
}

pub async fn get(runs: Runs, principal: Principal, request: ImportRef) -> Result<Import, Error> {
    Ok(import_out(
        visible(&runs, &principal, request.import_id, Role::Viewer).await?,
    ))
}

/// The longest the worker sleeps without looking at the queue.
const IDLE_POLL: Duration = Duration::from_secs(5);
/// A blob store that accepts no connection within this long is down for this attempt.
const FETCH_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A report download that stalls this long is given up for this attempt.
const FETCH_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Works through the queue until `shutdown`, taking the import due first: at start (to
/// resume after a restart), when woken, when the next retry is due, and every few
/// seconds. An import that cannot be done now is retried later, so it never holds up
/// the imports behind it.
pub async fn work(runs: Runs, retries: ImportRetries, wakeup: Wakeup, shutdown: CancellationToken) {
    let http = match reqwest::Client::builder()
        .connect_timeout(FETCH_CONNECT_TIMEOUT)
        .read_timeout(FETCH_READ_TIMEOUT)
        .build()
    {
        Ok(http) => http,
        Err(err) => {
            tracing::error!(error = %err, "no HTTP client for imports; imports stay queued");
            return;
        }
    };
    while !shutdown.is_cancelled() {
        let next = runs
            .store
            .read(|conn| Ok::<_, Error>(store::next_queued_import(conn)?))
            .await;
        let pause = match next {
            Ok(Some(import)) => {
                let due_in = import.next_attempt_at.unwrap_or_default() - Timestamp::now().millis();
                if due_in <= 0 {
                    attempt(&runs, &http, retries, import, &shutdown).await;
                    continue;
                }
                Duration::from_millis(due_in as u64).min(IDLE_POLL)
            }
            Ok(None) => IDLE_POLL,
            Err(err) => {
                tracing::error!(error = %err, "reading the import queue failed");
                IDLE_POLL
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = wakeup.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// What ended an attempt that did not complete the import.
#[derive(Debug)]
enum Failure {
    /// The report itself is at fault; the import fails with this message.
    Report(String),
    /// Reading or storing failed; tried again later, up to the bounded attempts. The
    /// message is shown on the import should it fail for good, so it names no URL.
    Transient(String),
    /// The run was deleted meanwhile (and the import with it).
    RunGone,
    /// The service is stopping; the attempt is made again after the restart.
    Stopped,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        match error {
            Error::NotFound("run") => Failure::RunGone,
            error => {
                tracing::error!(error = %error, "storing an import failed");
                Failure::Transient("storing the results failed".into())
            }
        }
    }
}

/// One attempt at an import. It is counted, and the next one scheduled, before it
/// starts, so an attempt cut short by a crash counts too.
async fn attempt(
    runs: &Runs,
    http: &reqwest::Client,
    retries: ImportRetries,
    import: ImportRow,
    shutdown: &CancellationToken,
) {
    let attempt = import.attempts + 1;
    let retry_at = Timestamp::now().millis() + retries.pause_after(attempt).as_millis() as i64;
    let id = import.id;
    let claimed = runs
        .store
        .write(move |conn| Ok::<_, Error>(store::begin_import_attempt(conn, id, retry_at)?))
        .await;
    match claimed {
        Ok(true) => {}
        Ok(false) => return,
        Err(err) => {
            tracing::error!(error = %err, "could not start an import attempt");
            tokio::time::sleep(Duration::from_secs(1)).await;
            return;
        }
    }
    let started = std::time::Instant::now();
    let outcome = match fetch(runs, http, &import).await {
        Ok(report) => apply(runs, &import, report, shutdown).await,
        Err(failure) => Err(failure),
    };
    let label = match &outcome {
        Ok(_) => "done",
        Err(Failure::Report(_)) => "failed",
        Err(Failure::Transient(_)) if attempt >= retries.attempts => "failed",
        Err(Failure::Transient(_)) => "retried",
        Err(Failure::RunGone) => "run_gone",
        Err(Failure::Stopped) => "stopped",
    };
    metrics::histogram!(crate::metrics::IMPORT_DURATION, "outcome" => label)
        .record(started.elapsed().as_secs_f64());
    let reason = match outcome {
        Ok(events) => {
            for event in &events {
                runs.publish(event).await;
            }
            return;
        }
        Err(Failure::Report(message)) => message,
        Err(Failure::Transient(reason)) if attempt >= retries.attempts => {
            format!(
                "the report could not be imported in {attempt} attempts; the last failed: {reason}"
            )
        }
        Err(Failure::Transient(reason)) => {
            tracing::warn!(import = %import.id, attempt, %reason, "import attempt failed; it will be retried");
            return;
        }
        Err(Failure::RunGone) => {
            tracing::debug!(import = %import.id, "the import's run was deleted");
            return;
        }
        Err(Failure::Stopped) => return,
    };
    if let Err(err) = fail(runs, &import, reason).await {
        tracing::error!(error = %err, import = %import.id, "could not record a failed import");
    }
}

/// Ends the import as failed. An import that made its own run leaves that run
/// interrupted and empty; one into an existing run leaves the run's other results
/// alone, and a finish of the run that waited for it goes ahead.
async fn fail(runs: &Runs, import: &ImportRow, reason: String) -> Result<(), Error> {
    let failed = import.clone();
    let events = runs
        .store
        .write(move |conn| {
            let now = Timestamp::now().millis();
            let tx = conn.transaction()?;
            let Some(run) = store::run(&tx, failed.run_id)? else {
                return Ok(Vec::new());
            };
            store::end_import(&tx, failed.id, ImportState::Failed, Some(&reason), None)?;
            let finished = if failed.into_run {
                finish::settle(&tx, run.id, now)?
            } else {
                store::clear_run(&tx, &run)?;
                store::finish_run(&tx, run.id, RunStatus::Interrupted, now, 0)?;
                Some(Event::RunFinished {
                    project_id: run.project_id,
                    run_id: run.id,
                    status: RunStatus::Interrupted,
                    counts: Counts::default(),
                    finished_at: convert::rfc3339(now),
                })
            };
            tx.commit()?;
            let done = Event::ImportDone {
                project_id: failed.project_id,
                run_id: failed.run_id,
                import_id: failed.id,
                status: ImportState::Failed,
            };
            Ok::<_, Error>(finished.into_iter().chain([done]).collect())
        })
        .await?;
    for event in &events {
        runs.publish(event).await;
    }
    Ok(())
}

/// Downloads the stored report to a temporary file. The artifacts service says where it
/// is (an import's report needs no principal), so an accepted import does not depend on
/// its submitter still being signed in, enabled or a member.
async fn fetch(
    runs: &Runs,
    http: &reqwest::Client,
    import: &ImportRow,
) -> Result<tempfile::NamedTempFile, Failure> {
    // Only imports whose report is stored are due (the store picks them so).
    let artifact_id = import
        .artifact_id
        .ok_or_else(|| Failure::Transient("the report is not stored yet".into()))?;
    let reference = ReportRef {
        run_id: import.run_id,
        artifact_id,
    };
    let source = runs
        .bus
        .request(&artifacts::REPORT_SOURCE, &reference)
        .await
        .map_err(|err| Failure::Transient(format!("the stored report is unavailable: {err}")))?;
    // reqwest's errors name the URL, whose query is a signature: never shown or logged.
    let unreadable = |err: reqwest::Error| {
        Failure::Transient(format!(
            "reading the stored report failed: {}",
            err.without_url()
        ))
    };
    let mut response = http.get(&source.url).send().await.map_err(unreadable)?;
    if !response.status().is_success() {
        return Err(Failure::Transient(format!(
            "the blob store answered {} for the stored report",
            response.status()
        )));
    }
    let spool_failed = |err: std::io::Error| {
        tracing::error!(error = %err, "spooling a report to a temporary file failed");
        Failure::Transient("spooling the report to a temporary file failed".into())
    };
    let file = tempfile::NamedTempFile::new().map_err(spool_failed)?;
    let mut out = tokio::fs::File::from_std(file.reopen().map_err(spool_failed)?);
    while let Some(chunk) = response.chunk().await.map_err(unreadable)? {
        out.write_all(&chunk).await.map_err(spool_failed)?;
    }
    out.flush().await.map_err(spool_failed)?;
    Ok(file)
}

/// Results written per transaction. The writer is released between chunks, so live
/// ingest and run creation wait for one chunk at most, never for a whole import.
const CHUNK: usize = 500;

/// Chunks read ahead of the writer.
const CHUNKS_AHEAD: usize = 2;

/// Applies the report, finishing the import (and the run it made). The report is first
/// read whole without writing, so a malformed one fails and leaves nothing behind; then
/// it is written in chunks of [`CHUNK`] results, each in its own transaction, its events
/// published once it commits. An attempt at an import that made its own run starts by
/// emptying it, so one that was cut short (a crash, a store error) is done again from the
/// start; an import into an existing run gives its results ids of its own
/// (`<import id>.<n>`), so a repeated attempt stores each once.
async fn apply(
    runs: &Runs,
    import: &ImportRow,
    report: tempfile::NamedTempFile,
    shutdown: &CancellationToken,
) -> Result<Vec<Event>, Failure> {
    let report = Arc::new(report);
    let checked = {
        let report = report.clone();
        tokio::task::spawn_blocking(move || read_results(report.path(), |_| true))
            .await
            .map_err(reader_failed)?
    };
    let warnings = checked.map_err(|error| Failure::Report(error.to_string()))?;
    if !import.into_run {
        let run_id = import.run_id;
        runs.store
            .write(move |conn| {
                let tx = conn.transaction()?;
                let run = store::run(&tx, run_id)?.ok_or(Error::NotFound("run"))?;
                store::clear_run(&tx, &run)?;
                tx.commit()?;
                Ok::<_, Error>(())
            })
            .await?;
    }
    let (chunks, mut received) = tokio::sync::mpsc::channel::<Vec<NewResult>>(CHUNKS_AHEAD);
    let id_prefix = import.into_run.then(|| import.id.to_string());
    let reader = tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut tally = Tally::default();
        let mut count = 0usize;
        read_results(report.path(), |mut result| {
            tally.add(
                &result.test_key().to_string(),
                result.attempt,
                result.status,
            );
            if let Some(prefix) = &id_prefix {
                // A UUID and a number: always a valid id.
                result.id = ResultId::parse(format!("{prefix}.{count}")).ok();
            }
            count += 1;
            chunk.push(result);
            chunk.len() < CHUNK
                || chunks
                    .blocking_send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))
                    .is_ok()
        })?;
        if !chunk.is_empty() {
            // The writer only stops listening when it gave up.
            let _ = chunks.blocking_send(chunk);
        }
        Ok::<_, ImportError>(tally.counts())
    });
    while let Some(chunk) = received.recv().await {
        if shutdown.is_cancelled() {
            return Err(Failure::Stopped);
        }
        let run_id = import.run_id;
        let known = runs.known_tests.clone();
        let events = runs
            .store
            .write(move |conn| {
                let mut known = known.lock().unwrap_or_else(|p| p.into_inner());
                let tx = conn.transaction()?;
                let run = store::run(&tx, run_id)?.ok_or(Error::NotFound("run"))?;
                let (events, learned) = {
                    let mut writer = ResultWriter::new(&tx, &known)?;
                    let mut batch = Batch::new(&run, chunk.len());
                    for result in chunk {
                        batch.apply(&mut writer, result)?;
                    }
                    (
                        batch.finish(&tx, Timestamp::now().millis())?,
                        writer.finish()?,
                    )
                };
                tx.commit()?;
                known.learn(learned);
                Ok::<_, Error>(events)
            })
            .await?;
        for event in &events {
            runs.publish(event).await;
        }
    }
    let own_counts = match reader.await {
        Ok(Ok(counts)) => counts,
        // The report was read once already; reading it again cannot disagree.
        Ok(Err(error)) => return Err(Failure::Report(error.to_string())),
        Err(err) => return Err(reader_failed(err)),
    };
    let import = import.clone();
    runs.store
        .write(move |conn| {
            let now = Timestamp::now().millis();
            let tx = conn.transaction()?;
            let run = store::run(&tx, import.run_id)?.ok_or(Error::NotFound("run"))?;
            let mut events = Vec::new();
            let counts = if import.into_run {
                own_counts
            } else {
                let (ended, counts) = finish::end(&tx, run.clone(), FinishReason::Completed, now)?;
                events.push(ended);
                counts
            };
            let counts = serde_json::to_string(&counts).unwrap_or_default();
            store::end_import(&tx, import.id, ImportState::Done, None, Some(&counts))?;
            if !warnings.is_empty() {
                let warnings = serde_json::to_string(&warnings).unwrap_or_default();
                store::set_import_warnings(&tx, import.id, &warnings)?;
            }
            if import.into_run {
                events.extend(finish::settle(&tx, run.id, now)?);
            }
            tx.commit()?;
            events.push(Event::ImportDone {
                project_id: run.project_id,
                run_id: run.id,
                import_id: import.id,
                status: ImportState::Done,
            });
            Ok::<_, Error>(events)
        })
        .await
        .map_err(Failure::from)
}

fn reader_failed(err: tokio::task::JoinError) -> Failure {
    tracing::error!(error = %err, "the report reader stopped");
    Failure::Transient("reading the report failed".into())
}

/// Calls `each` with every result of the report, in order, until it returns `false`;
/// the report's format is told by its content. Returns what the reader noticed
/// without refusing the report.
fn read_results(
    report: &Path,
    mut each: impl FnMut(NewResult) -> bool,
) -> Result<Vec<String>, ImportError> {
    let file = BufReader::new(std::fs::File::open(report).map_err(ImportError::Read)?);
    let mut reader = ReportReader::open(file)?;
    for item in reader.by_ref() {
        if let ReportItem::Result(result) = item? {
            if !each(result) {
                break;
            }
        }
    }
    Ok(reader.warnings().to_vec())
}
