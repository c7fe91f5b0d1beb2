//! `realtime.subscribe`: where a viewer starts on a channel, after the same role check
//! as the HTTP API (viewer in the project; a run outside it is "not found").

use std::collections::BTreeMap;

use verdict_bus::access;
use verdict_bus::Bus;
use verdict_contracts::auth::{Principal, Role};
use verdict_contracts::live::{
    Channel, ProjectSnapshot, RunSnapshot, Snapshot, Subscribe, Subscription, SNAPSHOT_FAILURES,
    SNAPSHOT_RUNS,
};
use verdict_contracts::page::PageRequest;
use verdict_contracts::runs::{
    ListResults, ListRuns, ResultStatus, RunRef, RunStatus, GET_RUN, LIST_RESULTS, LIST_RUNS,
};

use crate::log::{ChannelLog, Replay};
use crate::Error;

#[derive(Clone)]
pub struct Subscriptions {
    pub bus: Bus,
    pub log: ChannelLog,
    pub replay_limit: u64,
}

impl Subscriptions {
    pub async fn start(
        &self,
        principal: Principal,
        request: Subscribe,
    ) -> Result<Subscription, Error> {
        self.authorize(&principal, &request.channel).await?;
        if let Some(since) = request.since {
            if let Replay::Frames { head, frames } = self
                .log
                .replay(&request.channel, since, self.replay_limit)
                .await?
            {
                return Ok(Subscription {
                    seq: head,
                    snapshot: None,
                    frames,
                });
            }
        }
        // The head is read before the state, so the snapshot holds at least everything
        // up to `seq`; frames after it carry absolute counts, so overlap is harmless.
        let head = self.log.head(&request.channel).await?;
        let snapshot = self.snapshot(&principal, &request.channel).await?;
        Ok(Subscription {
            seq: head.seq,
            snapshot: Some(snapshot),
            frames: Vec::new(),
        })
    }

    async fn authorize(&self, principal: &Principal, channel: &Channel) -> Result<(), Error> {
        match channel {
            // Runs checks the principal's role in the run's project itself.
            Channel::Run(run_id) => self.run(principal, run_id).await.map(drop),
            Channel::Project(project_id) => {
                access::authorize(&self.bus, principal, project_id, Role::Viewer)
                    .await
                    .map(drop)
                    .map_err(Error::Refused)
            }
        }
    }

    async fn run(
        &self,
        principal: &Principal,
        run_id: &str,
    ) -> Result<verdict_contracts::runs::Run, Error> {
        let reference = RunRef {
            run_id: run_id.to_owned(),
        };
        self.bus
            .request_as(&GET_RUN, &reference, principal)
            .await
            .map_err(|err| Error::Refused(access::service_error(err)))
    }

    async fn snapshot(&self, principal: &Principal, channel: &Channel) -> Result<Snapshot, Error> {
        let refused = |err| Error::Refused(access::service_error(err));
        match channel {
            Channel::Run(run_id) => {
                let run = self.run(principal, run_id).await?;
                let failed = ListResults {
                    run_id: run_id.clone(),
                    status: Some(ResultStatus::Failed),
                    q: None,
                    suite: None,
                    newest_first: true,
                    page: PageRequest {
                        cursor: None,
                        limit: SNAPSHOT_FAILURES,
                    },
                };
                let failures = self
                    .bus
                    .request_as(&LIST_RESULTS, &failed, principal)
                    .await
                    .map_err(refused)?
                    .items;
                let elapsed_ms = (run.status == RunStatus::Running)
                    .then(|| elapsed_ms(&run.started_at))
                    .flatten();
                Ok(Snapshot::Run(Box::new(RunSnapshot {
                    run,
                    elapsed_ms,
                    failures,
                })))
            }
            Channel::Project(project_id) => {
                let running = ListRuns {
                    project: project_id.clone(),
                    status: Some(RunStatus::Running),
                    attributes: BTreeMap::new(),
                    since: None,
                    until: None,
                    page: PageRequest {
                        cursor: None,
                        limit: SNAPSHOT_RUNS,
                    },
                };
                let running = self
                    .bus
                    .request_as(&LIST_RUNS, &running, principal)
                    .await
                    .map_err(refused)?
                    .items;
                Ok(Snapshot::Project(ProjectSnapshot { running }))
            }
        }
    }
}

fn elapsed_ms(started_at: &str) -> Option<u64> {
    let started =
        time::OffsetDateTime::parse(started_at, &time::format_description::well_known::Rfc3339)
            .ok()?;
    let elapsed = time::OffsetDateTime::now_utc() - started;
    u64::try_from(elapsed.whole_milliseconds()).ok()
}
