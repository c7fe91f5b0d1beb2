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
use verdict_contracts::artifacts::{self, ArtifactRef};
use verdict_contracts::auth::{Principal, Role};
use verdict_contracts::events::Event;
use verdict_contracts::runs::{
    CreateImport, CreateRun, Import, ImportRef, ImportState, NewRun, ReportKind, RunStatus,
    StartImport,
};
use verdict_contracts::system::Empty;

use crate::context::Runs;
use crate::convert::{self, now_ms};
use crate::domain::{finished_status, FinishReason, NewResult};
use crate::import::{parse_ctrf, ImportError, JunitReader, ReportItem};
use crate::ingest::Batch;
use crate::run_commands;
use crate::store::{self, ImportRow, ResultWriter};
use crate::Error;

/// Wakes the import worker when something is queued.
pub type Wakeup = Arc<Notify>;

fn import_out(row: ImportRow) -> Import {
    Import {
        id: row.id,
        run_id: row.run_id,
        status: match row.status.as_str() {
            "done" => ImportState::Done,
            "failed" => ImportState::Failed,
            _ => ImportState::Pending,
        },
        error: row.error,
        counts: row.counts.and_then(|json| serde_json::from_str(&json).ok()),
    }
}

fn format_name(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::Junit => "junit",
        ReportKind::Ctrf => "ctrf",
    }
}

pub async fn create(
    runs: Runs,
    principal: Principal,
    request: CreateImport,
) -> Result<Import, Error> {
    let new = NewRun {
        name: request.name,
        attributes: request.attributes,
        started_at: None,
    };
    let run = run_commands::create(
        runs.clone(),
        principal,
        CreateRun {
            project: request.project,
            run: new,
        },
    )
    .await?;
    let row = ImportRow {
        id: uuid::Uuid::now_v7().to_string(),
        run_id: run.id,
        project_id: run.project_id,
        format: format_name(request.format).to_owned(),
        status: "pending".into(),
        error: None,
        counts: None,
        artifact_id: None,
        principal: None,
    };
    let stored = row.clone();
    runs.store
        .write(move |conn| Ok::<_, Error>(store::insert_import(conn, &stored)?))
        .await?;
    Ok(import_out(row))
}

async fn visible(
    runs: &Runs,
    principal: &Principal,
    import_id: String,
    needed: Role,
) -> Result<ImportRow, Error> {
    let row = runs
        .store
        .read(move |conn| Ok::<_, Error>(store::import(conn, &import_id)?))
        .await?
        .ok_or(Error::NotFound("import"))?;
    runs.authorize(principal, &row.project_id, needed).await?;
    Ok(row)
}

pub async fn start(
    runs: Runs,
    principal: Principal,
    request: StartImport,
    wakeup: Wakeup,
) -> Result<Import, Error> {
    let row = visible(&runs, &principal, request.import_id, Role::Reporter).await?;
    let who =
        serde_json::to_string(&principal).map_err(|err| Error::BadRequest(err.to_string()))?;
    let id = row.id.clone();
    let queued = runs
        .store
        .write(move |conn| {
            Ok::<_, Error>(store::queue_import(
                conn,
                &id,
                &request.artifact_id,
                &who,
                now_ms(),
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

/// Works through the queue until `shutdown`: at start (to resume after a restart), when
/// woken, and every few seconds.
pub async fn work(runs: Runs, wakeup: Wakeup, shutdown: CancellationToken) {
    let http = reqwest::Client::new();
    loop {
        loop {
            let next = runs
                .store
                .read(|conn| Ok::<_, Error>(store::next_queued_import(conn)?))
                .await;
            match next {
                Ok(Some(import)) => process(&runs, &http, import).await,
                Ok(None) => break,
                Err(err) => {
                    tracing::error!(error = %err, "reading the import queue failed");
                    break;
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = wakeup.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// What ended an import that did not complete.
enum Failure {
    /// The report itself is at fault; the import fails with this message.
    Report(String),
    /// Fetching or storing failed; the import stays queued and is tried again.
    Transient(Error),
}

async fn process(runs: &Runs, http: &reqwest::Client, import: ImportRow) {
    let id = import.id.clone();
    let outcome = match fetch(runs, http, &import).await {
        Ok(file) => apply(runs, &import, file).await,
        Err(failure) => Err(failure),
    };
    let (status, error, counts) = match outcome {
        Ok(events) => {
            for event in &events {
                runs.publish(event).await;
            }
            return;
        }
        Err(Failure::Report(message)) => ("failed", Some(message), None::<String>),
        Err(Failure::Transient(err)) => {
            tracing::warn!(import = %id, error = %err, "import failed for now; retrying shortly");
            tokio::time::sleep(Duration::from_secs(1)).await;
            return;
        }
    };
    let now = now_ms();
    let run_id = import.run_id.clone();
    let ended = runs
        .store
        .write(move |conn| {
            let tx = conn.transaction()?;
            store::end_import(&tx, &id, status, error.as_deref(), counts.as_deref())?;
            store::finish_run(&tx, &run_id, RunStatus::Interrupted, now)?;
            tx.commit()?;
            Ok::<_, Error>(())
        })
        .await;
    if let Err(err) = ended {
        tracing::error!(error = %err, "could not record a failed import");
    }
    runs.publish(&Event::ImportDone {
        project_id: import.project_id,
        run_id: import.run_id,
        import_id: import.id,
        status: "failed".into(),
    })
    .await;
}

/// Downloads the stored report to a temporary file.
async fn fetch(
    runs: &Runs,
    http: &reqwest::Client,
    import: &ImportRow,
) -> Result<tempfile::NamedTempFile, Failure> {
    let transient = |reason: String| Failure::Transient(Error::JetStream(reason));
    let principal: Principal =
        serde_json::from_str(import.principal.as_deref().unwrap_or_default())
            .map_err(|err| Failure::Report(format!("the import has no valid requester: {err}")))?;
    let reference = ArtifactRef {
        artifact_id: import.artifact_id.clone().unwrap_or_default(),
    };
    let target = runs
        .bus
        .request_as(&artifacts::DOWNLOAD, &reference, &principal)
        .await
        .map_err(|err| transient(format!("download URL: {err}")))?;
    let url = if target.url.starts_with('/') {
        let endpoint = runs
            .bus
            .request(&artifacts::BLOB_ENDPOINT, &Empty {})
            .await
            .map_err(|err| transient(format!("blob endpoint: {err}")))?;
        let base = endpoint.base_url.ok_or_else(|| {
            transient("the blob store gave a relative URL but no endpoint".into())
        })?;
        format!("{}{}", base.trim_end_matches('/'), target.url)
    } else {
        target.url
    };
    let mut response = http
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|err| transient(format!("fetching the report: {err}")))?;
    let file = tempfile::NamedTempFile::new().map_err(|err| transient(err.to_string()))?;
    let mut out =
        tokio::fs::File::from_std(file.reopen().map_err(|err| transient(err.to_string()))?);
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| transient(err.to_string()))?
    {
        out.write_all(&chunk)
            .await
            .map_err(|err| transient(err.to_string()))?;
    }
    out.flush()
        .await
        .map_err(|err| transient(err.to_string()))?;
    Ok(file)
}

/// Results written per transaction. The writer is released between chunks, so live
/// ingest and run creation wait for one chunk at most, never for a whole import.
const CHUNK: usize = 500;

/// Chunks read ahead of the writer.
const CHUNKS_AHEAD: usize = 2;

/// Applies the report, finishing the run and the import. The report is first read whole
/// without writing, so a malformed one fails and leaves nothing behind; then it is
/// written in chunks of [`CHUNK`] results, each in its own transaction, its events
/// published once it commits. An attempt starts by emptying the run, so one that was
/// cut short (a crash, a store error) is done again from the start.
async fn apply(
    runs: &Runs,
    import: &ImportRow,
    report: tempfile::NamedTempFile,
) -> Result<Vec<Event>, Failure> {
    let report = Arc::new(report);
    let format = import.format.clone();
    let checked = {
        let (report, format) = (report.clone(), format.clone());
        tokio::task::spawn_blocking(move || read_results(&format, report.path(), |_| true))
            .await
            .map_err(|err| Failure::Transient(Error::JetStream(err.to_string())))?
    };
    if let Err(error) = checked {
        return Err(Failure::Report(error.to_string()));
    }
    let run_id = import.run_id.clone();
    runs.store
        .write(move |conn| {
            let tx = conn.transaction()?;
            if let Some(run) = store::run(&tx, &run_id)? {
                store::clear_run(&tx, &run)?;
            }
            tx.commit()?;
            Ok::<_, Error>(())
        })
        .await
        .map_err(Failure::Transient)?;
    let (chunks, mut received) = tokio::sync::mpsc::channel::<Vec<NewResult>>(CHUNKS_AHEAD);
    let reader = tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(CHUNK);
        read_results(&format, report.path(), |result| {
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
        Ok::<_, ImportError>(())
    });
    while let Some(chunk) = received.recv().await {
        let run_id = import.run_id.clone();
        let events = runs
            .store
            .write(move |conn| {
                let tx = conn.transaction()?;
                let run = store::run(&tx, &run_id)?.ok_or(Error::NotFound("run"))?;
                let events = {
                    let mut writer = ResultWriter::new(&tx)?;
                    let mut batch = Batch::new(&run, chunk.len());
                    for result in chunk {
                        batch.apply(&mut writer, result)?;
                    }
                    batch.finish(&tx, now_ms())?
                };
                tx.commit()?;
                Ok::<_, Error>(events)
            })
            .await
            .map_err(Failure::Transient)?;
        for event in &events {
            runs.publish(event).await;
        }
    }
    match reader.await {
        Ok(Ok(())) => {}
        // The report was read once already; reading it again cannot disagree.
        Ok(Err(error)) => return Err(Failure::Report(error.to_string())),
        Err(err) => return Err(Failure::Transient(Error::JetStream(err.to_string()))),
    }
    let import = import.clone();
    runs.store
        .write(move |conn| {
            let now = now_ms();
            let tx = conn.transaction()?;
            let run = store::run(&tx, &import.run_id)?.ok_or(Error::NotFound("run"))?;
            let status = finished_status(&run.counts, FinishReason::Completed);
            store::finish_run(&tx, &run.id, status, now)?;
            let counts = serde_json::to_string(&run.counts).unwrap_or_default();
            store::end_import(&tx, &import.id, "done", None, Some(&counts))?;
            tx.commit()?;
            Ok::<_, Error>(vec![
                Event::RunFinished {
                    project_id: run.project_id.clone(),
                    run_id: run.id.clone(),
                    status,
                    counts: run.counts,
                    finished_at: convert::rfc3339(now),
                },
                Event::ImportDone {
                    project_id: run.project_id,
                    run_id: run.id,
                    import_id: import.id,
                    status: "done".into(),
                },
            ])
        })
        .await
        .map_err(Failure::Transient)
}

/// Calls `each` with every result of the report, in order, until it returns `false`.
fn read_results(
    format: &str,
    report: &Path,
    mut each: impl FnMut(NewResult) -> bool,
) -> Result<(), ImportError> {
    let reader = BufReader::new(std::fs::File::open(report).map_err(ImportError::Read)?);
    if format == "ctrf" {
        for result in parse_ctrf(reader)?.results {
            if !each(result) {
                break;
            }
        }
    } else {
        for item in JunitReader::new(reader) {
            if let ReportItem::Result(result) = item? {
                if !each(result) {
                    break;
                }
            }
        }
    }
    Ok(())
}
