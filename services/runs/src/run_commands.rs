//! Creating and deleting runs. Results and finishes arrive through the ingest stream
//! (`ingest.rs`), not here.

use verdict_contracts::auth::{Principal, Role};
use verdict_contracts::events::Event;
use verdict_contracts::runs::{limits, Attributes, CreateRun, Run, RunRef, RunStatus};
use verdict_contracts::system::Empty;
use verdict_contracts::tasks::Task;

use crate::context::Runs;
use crate::convert::{self, now_ms, parse_rfc3339, run_out};
use crate::domain::Counts;
use crate::outbox::Outbox;
use crate::store::{self, RunRow};
use crate::Error;

pub async fn create(runs: Runs, principal: Principal, request: CreateRun) -> Result<Run, Error> {
    let access = runs
        .authorize(&principal, &request.project, Role::Reporter)
        .await?;
    let new = request.run;
    let name = new.name.trim();
    if name.is_empty() || name.len() > limits::MAX_NAME_BYTES || name.contains('\0') {
        return Err(Error::BadRequest(format!(
            "name: must be 1 to {} bytes without NUL",
            limits::MAX_NAME_BYTES
        )));
    }
    let attributes = Attributes::parse(new.attributes).map_err(|problems| {
        let details: Vec<String> = problems
            .into_iter()
            .map(|p| match p.key {
                Some(key) => format!("attributes.{key}: {}", p.reason),
                None => format!("attributes: {}", p.reason),
            })
            .collect();
        Error::BadRequest(details.join("; "))
    })?;
    let started_at = match &new.started_at {
        Some(text) => parse_rfc3339("started_at", text)?,
        None => now_ms(),
    };
    let unsaved = RunRow {
        // Given by the store.
        rid: 0,
        id: uuid::Uuid::now_v7().to_string(),
        project_id: access.project_id,
        name: name.to_owned(),
        status: RunStatus::Running,
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        started_at,
        finished_at: None,
        counts: Counts::default(),
    };
    let run = runs
        .store
        .write(move |conn| {
            let mut run = unsaved;
            let tx = conn.transaction()?;
            store::insert_run(&tx, &mut run)?;
            tx.commit()?;
            Ok::<_, Error>(run)
        })
        .await?;
    runs.publish(&Event::RunStarted {
        project_id: run.project_id.clone(),
        run_id: run.id.clone(),
        name: run.name.clone(),
        started_at: convert::rfc3339(run.started_at),
    })
    .await;
    Ok(run_out(run))
}

pub async fn delete(runs: Runs, principal: Principal, request: RunRef) -> Result<Empty, Error> {
    let run = runs
        .run_for(&principal, request.run_id, Role::Maintainer)
        .await?;
    remove(&runs, run.id, run.project_id).await?;
    Ok(Empty {})
}

/// Deletes a run with everything stored of it and, in the same transaction, tells the
/// other services through the outbox: live viewers get `run.deleted`, the artifacts
/// service a task to delete the run's artifacts.
pub async fn remove(runs: &Runs, run_id: String, project_id: String) -> Result<(), Error> {
    runs.store
        .write(move |conn| {
            let tx = conn.transaction()?;
            if store::delete_run(&tx, &run_id)? {
                let now = now_ms();
                let task = Task::DeleteRunArtifacts {
                    project_id: project_id.clone(),
                    run_id: run_id.clone(),
                };
                Outbox::task(&tx, &task, now)?;
                Outbox::event(&tx, &Event::RunDeleted { project_id, run_id }, now)?;
            }
            tx.commit()?;
            Ok::<_, Error>(())
        })
        .await?;
    runs.outbox.wake();
    Ok(())
}
