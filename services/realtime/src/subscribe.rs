//! `realtime.subscribe`: where a viewer starts on a channel, after the same role check
//! as the HTTP API (viewer in the project; a run outside it is "not found").

use verdict_bus::access;
use verdict_bus::Bus;
use verdict_contracts::auth::{Principal, Role};
use verdict_contracts::live::{
    Channel, ProjectSnapshot, RunSnapshot, Snapshot, Subscribe, Subscription, SNAPSHOT_FAILURES,
    SNAPSHOT_RUNS,
};
use verdict_contracts::runs::{
    RunRef, RunStatus, RunWithFailures, RunningRuns, SnapshotRun, RUNNING_RUNS, RUN_SCOPE,
    RUN_SNAPSHOT,
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
        let snapshot = self.snapshot(&request.channel).await?;
        Ok(Subscription {
            seq: head.seq,
            snapshot: Some(snapshot),
            frames: Vec::new(),
        })
    }

    /// The viewer role in the channel's project, checked here: a run outside the
    /// principal's projects is "not found", like one that does not exist.
    async fn authorize(&self, principal: &Principal, channel: &Channel) -> Result<(), Error> {
        let refused = |err| Error::Refused(access::service_error(err));
        let project = match channel {
            Channel::Run(run_id) => {
                let reference = RunRef { run_id: *run_id };
                self.bus
                    .request(&RUN_SCOPE, &reference)
                    .await
                    .map_err(refused)?
                    .project_id
            }
            Channel::Project(project_id) => *project_id,
        };
        access::authorize(&self.bus, principal, &project.to_string(), Role::Viewer)
            .await
            .map(drop)
            .map_err(Error::Refused)
    }

    /// What the channel shows now; the caller authorized the viewer.
    async fn snapshot(&self, channel: &Channel) -> Result<Snapshot, Error> {
        let refused = |err| Error::Refused(access::service_error(err));
        match channel {
            Channel::Run(run_id) => {
                let request = SnapshotRun {
                    run_id: *run_id,
                    failures: SNAPSHOT_FAILURES,
                };
                let RunWithFailures { run, failures } = self
                    .bus
                    .request(&RUN_SNAPSHOT, &request)
                    .await
                    .map_err(refused)?;
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
                let request = RunningRuns {
                    project_id: *project_id,
                    limit: SNAPSHOT_RUNS,
                };
                let running = self
                    .bus
                    .request(&RUNNING_RUNS, &request)
                    .await
                    .map_err(refused)?;
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
