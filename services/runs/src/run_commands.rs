//! Creating (or finding, by build key) and deleting runs, and the shards that join them.
//! Results and finishes arrive through the ingest stream (`ingest.rs`), not here.

use verdict_contracts::auth::{Principal, Role};
use verdict_contracts::events::Event;
use verdict_contracts::idempotency::Keyed;
use verdict_contracts::ids::{ProjectId, RunId};
use verdict_contracts::runs::shards::{
    check_label, MAX_BUILD_KEY_BYTES, MAX_SHARDS, MAX_SHARD_BYTES,
};
use verdict_contracts::runs::{
    self, limits, Attributes, CreateRun, CreatedRun, NewRun, RunRef, RunShard, RunStatus, ShardRef,
};
use verdict_contracts::system::Empty;
use verdict_contracts::tasks::Task;
use verdict_contracts::Timestamp;
use verdict_store::idempotency::{keyed, Recall};
use verdict_store::rusqlite::Transaction;

use crate::context::Runs;
use crate::convert::{self, parse_rfc3339, run_out, shard_out};
use crate::domain::{Counts, Finishing};
use crate::outbox::Outbox;
use crate::store::{self, RunRow};
use crate::Error;

/// A new run's fields, checked.
pub struct RunSpec {
    pub name: String,
    pub attributes: std::collections::BTreeMap<String, String>,
    pub started_at: i64,
    pub build_key: Option<String>,
    pub shard: Option<String>,
    pub shards: Option<u32>,
}

impl RunSpec {
    pub fn check(new: NewRun) -> Result<Self, Error> {
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
            None => Timestamp::now().millis(),
        };
        let label = |field: &str, value: &Option<String>, limit| {
            value
                .as_deref()
                .map(|value| check_label(value, limit))
                .transpose()
                .map_err(|reason| Error::BadRequest(format!("{field}: {reason}")))
        };
        label("build_key", &new.build_key, MAX_BUILD_KEY_BYTES)?;
        label("shard", &new.shard, MAX_SHARD_BYTES)?;
        if new.build_key.is_none() {
            for (field, given) in [
                ("shard", new.shard.is_some()),
                ("shards", new.shards.is_some()),
            ] {
                if given {
                    return Err(Error::BadRequest(format!("{field}: needs a build_key")));
                }
            }
        }
        if new.shards.is_some_and(|n| n == 0 || n > MAX_SHARDS) {
            return Err(Error::BadRequest(format!(
                "shards: must be from 1 to {MAX_SHARDS}"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            started_at,
            build_key: new.build_key,
            shard: new.shard,
            shards: new.shards,
        })
    }
}

/// Stores a new run in `tx`; answers it and the event announcing it (to publish once
/// the transaction committed).
pub fn insert(
    tx: &Transaction<'_>,
    project_id: ProjectId,
    spec: &RunSpec,
) -> Result<(RunRow, Event), Error> {
    let mut run = RunRow {
        // Given by the store.
        rid: 0,
        id: RunId::generate(),
        project_id,
        name: spec.name.clone(),
        status: RunStatus::Running,
        attributes: spec.attributes.clone(),
        started_at: spec.started_at,
        finished_at: None,
        counts: Counts::default(),
        build_key: spec.build_key.clone(),
        finishing: Finishing {
            shards_expected: spec.shards,
            ..Finishing::default()
        },
    };
    store::insert_run(tx, &mut run)?;
    let started = Event::RunStarted {
        project_id: run.project_id,
        run_id: run.id,
        name: run.name.clone(),
        started_at: convert::rfc3339(run.started_at),
    };
    Ok((run, started))
}

/// Creates a run, or with a build key finds the project's run of that build (and joins
/// the request's shard to it). A request with an `Idempotency-Key` seen before gets the
/// answer it got then.
pub async fn create(
    runs: Runs,
    principal: Principal,
    request: Keyed<CreateRun>,
) -> Result<CreatedRun, Error> {
    let access = runs
        .authorize(&principal, &request.request.project, Role::Reporter)
        .await?;
    let keyed = keyed(&principal, &runs::CREATE_RUN, &request);
    let spec = RunSpec::check(request.request.run)?;
    let (answer, events) = runs
        .store
        .write(move |conn| {
            let now = Timestamp::now().millis();
            let tx = conn.transaction()?;
            if let Some(keyed) = &keyed {
                match keyed.recall(&tx, now)? {
                    Recall::Repeat(answer) => return Ok((answer, Vec::new())),
                    Recall::Conflict => return Err(Error::KeyReused),
                    Recall::New => {}
                }
            }
            let (run, created, events) = find_or_create(&tx, access.project_id, &spec, now)?;
            let answer = CreatedRun {
                run: run_out(run),
                created,
            };
            if let Some(keyed) = &keyed {
                keyed.remember(&tx, &answer, now)?;
            }
            tx.commit()?;
            Ok::<_, Error>((answer, events))
        })
        .await?;
    for event in &events {
        runs.publish(event).await;
    }
    Ok(answer)
}

/// The run `spec` asks for, whether it was created now, and the events to publish.
fn find_or_create(
    tx: &Transaction<'_>,
    project_id: ProjectId,
    spec: &RunSpec,
    now: i64,
) -> Result<(RunRow, bool, Vec<Event>), Error> {
    let found = match &spec.build_key {
        Some(build_key) => store::run_by_build_key(tx, project_id, build_key)?,
        None => None,
    };
    let mut events = Vec::new();
    let (run, created) = match found {
        Some(run) => (run, false),
        None => {
            let (run, started) = insert(tx, project_id, spec)?;
            events.push(started);
            (run, true)
        }
    };
    if let (false, Some(shards)) = (created, spec.shards) {
        store::expect_shards(tx, &run, shards)?;
    }
    if let Some(shard) = &spec.shard {
        let new_shard = store::shard(tx, run.rid, shard)?.is_none();
        if new_shard && run.finishing.shards_joined >= MAX_SHARDS {
            return Err(Error::Conflict(format!(
                "shard: the run has {MAX_SHARDS} shards, as many as a run takes"
            )));
        }
        store::join_shard(tx, &run, shard, now)?;
        if run.finished_at.is_some() {
            store::reopen(tx, &run, now)?;
            events.push(Event::RunProgress {
                project_id: run.project_id,
                run_id: run.id,
                status: RunStatus::Running,
                counts: run.counts,
            });
        }
    }
    let run = store::run(tx, run.id)?.ok_or(Error::NotFound("run"))?;
    Ok((run, created, events))
}

/// One shard of a run.
pub async fn get_shard(
    runs: Runs,
    principal: Principal,
    request: ShardRef,
) -> Result<RunShard, Error> {
    let run = runs
        .run_for(&principal, request.run_id, Role::Viewer)
        .await?;
    let rid = run.rid;
    let row = runs
        .store
        .read(move |conn| Ok::<_, Error>(store::shard(conn, rid, &request.shard)?))
        .await?
        .ok_or(Error::NotFound("shard"))?;
    Ok(shard_out(run.id, row))
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
pub async fn remove(runs: &Runs, run_id: RunId, project_id: ProjectId) -> Result<(), Error> {
    runs.store
        .write(move |conn| {
            let tx = conn.transaction()?;
            if store::delete_run(&tx, run_id)? {
                let now = Timestamp::now().millis();
                let task = Task::DeleteRunArtifacts { project_id, run_id };
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
