//! Turns run events into deliveries: a durable consumer of `run.finished` in
//! `VERDICT_EVENTS` (its own, beside realtime's readers) that writes the deliveries each
//! event calls for, and acknowledges the event once they are committed. A redelivered
//! event finds its deliveries there already and adds none.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use verdict_bus::consume::{self, Delivery, Verdict, WorkQueue};
use verdict_bus::{access, Bus};
use verdict_contracts::events::{self, Event, EventKind};
use verdict_contracts::ids::DeliveryId;
use verdict_contracts::ids::{ProjectId, RunId};
use verdict_contracts::notify::WebhookEvent;
use verdict_contracts::runs::triage::{RunNews, RUN_NEWS};
use verdict_contracts::runs::{RunRef, RunWithFailures, SnapshotRun, RUN_SNAPSHOT};
use verdict_contracts::{streams, ErrorCode, Timestamp};
use verdict_store::Store;

use crate::domain::payload::{self, ProviderKind, RunReport};
use crate::store::{self, NewDelivery, Target};
use crate::{Error, Settings};

/// The durable consumer's name: one per notify deployment.
pub const EVENTS_CONSUMER: &str = "verdict-notify-events";
/// How long an event whose run could not be read waits before it is tried again.
const RETRY_EVENT: Duration = Duration::from_secs(5);
/// Run attributes naming the commit and repository a run tested, and the provider.
pub const COMMIT_ATTRIBUTE: &str = "git.commit";
pub const REPOSITORY_ATTRIBUTE: &str = "git.repository";
pub const PROVIDER_ATTRIBUTE: &str = "git.provider";

/// What turning events into deliveries needs.
#[derive(Clone)]
pub struct Deliveries {
    pub store: Store,
    pub bus: Bus,
    pub settings: Arc<Settings>,
    pub due: Arc<Notify>,
}

/// Consumes run events until `shutdown`.
pub async fn consume(deliveries: Deliveries, shutdown: CancellationToken) -> Result<(), Error> {
    let queue = WorkQueue {
        stream: streams::EVENTS,
        consumer: EVENTS_CONSUMER,
        filter: Some(events::kind_filter(EventKind::RunFinished)),
        ack_wait: Duration::from_secs(30),
        max_batch: 64,
        rounds_in_flight: 1,
        replicas: deliveries.settings.replicas,
    };
    let client = deliveries.bus.client().clone();
    consume::consume(
        &client,
        queue,
        |batch| {
            let deliveries = deliveries.clone();
            async move {
                let mut verdicts = Vec::with_capacity(batch.len());
                for delivery in batch {
                    verdicts.push(deliveries.handle(&delivery).await);
                }
                verdicts
            }
        },
        shutdown,
    )
    .await?;
    Ok(())
}

impl Deliveries {
    async fn handle(&self, delivery: &Delivery) -> Verdict {
        let event = match serde_json::from_slice::<Event>(&delivery.payload) {
            Ok(event) => event,
            Err(err) => {
                tracing::error!(error = %err, subject = %delivery.subject, "malformed event dropped");
                return Verdict::Reject;
            }
        };
        let Event::RunFinished {
            project_id,
            run_id,
            finished_at,
            ..
        } = event
        else {
            return Verdict::Done;
        };
        match self.plan(project_id, run_id, &finished_at).await {
            Ok(created) => {
                if created > 0 {
                    self.due.notify_one();
                }
                Verdict::Done
            }
            Err(err) => {
                tracing::warn!(%run_id, error = %err, "deliveries of a finished run not planned yet; will retry");
                Verdict::Retry(RETRY_EVENT)
            }
        }
    }

    /// Writes the deliveries one finished run calls for; answers how many are new.
    async fn plan(
        &self,
        project_id: ProjectId,
        run_id: RunId,
        finished_at: &str,
    ) -> Result<usize, Error> {
        let webhooks = self
            .store
            .read(move |conn| Ok::<_, Error>(store::enabled_webhooks(conn, project_id)?))
            .await?;
        let settings = &self.settings;
        if webhooks.is_empty() && settings.github.is_none() && settings.gitlab.is_none() {
            return Ok(0);
        }
        let snapshot = SnapshotRun {
            run_id,
            failures: payload::FIRST_FAILURES as u32,
        };
        let Some(RunWithFailures { run, failures }) =
            found(self.bus.request(&RUN_SNAPSHOT, &snapshot).await)?
        else {
            // Deleted since it finished: nothing to tell.
            return Ok(0);
        };
        let wants_news = webhooks.iter().any(|webhook| {
            webhook.events.contains(&WebhookEvent::FailureNew)
                || webhook.events.contains(&WebhookEvent::TestFlaky)
        });
        let news = if wants_news {
            let run = RunRef { run_id };
            match found(self.bus.request(&RUN_NEWS, &run).await)? {
                Some(news) => news,
                None => return Ok(0),
            }
        } else {
            RunNews::default()
        };
        let url = settings
            .public_url
            .as_ref()
            .map(|origin| format!("{origin}/runs/{}", run.id));
        let report = RunReport {
            run,
            failures,
            url,
            news,
        };
        let mut planned = Vec::new();
        for webhook in &webhooks {
            for event in report.events() {
                if !webhook.events.contains(&event) {
                    continue;
                }
                planned.push(NewDelivery {
                    id: DeliveryId::generate(),
                    webhook_id: Some(webhook.id),
                    target: Target::Webhook,
                    url: None,
                    event,
                    project_id: project_id.to_owned(),
                    run_id: run_id.to_owned(),
                    dedupe_key: format!("{}:{}:{run_id}:{finished_at}", webhook.id, event.as_str()),
                    body: payload::webhook_body(event, webhook.format, &report, finished_at),
                });
            }
        }
        planned.extend(self.commit_status(&report, finished_at));
        let now = Timestamp::now().millis();
        self.store
            .write(move |conn| {
                let tx = conn.transaction()?;
                let mut created = 0;
                for delivery in &planned {
                    created += usize::from(store::insert_delivery(&tx, delivery, now)?);
                }
                tx.commit()?;
                Ok(created)
            })
            .await
    }

    /// The commit status of a run that names its commit and repository, when the
    /// provider it names (or the only one configured) has a token.
    fn commit_status(&self, report: &RunReport, finished_at: &str) -> Option<NewDelivery> {
        let attributes = &report.run.attributes;
        let sha = attributes.get(COMMIT_ATTRIBUTE)?;
        let repository = attributes.get(REPOSITORY_ATTRIBUTE)?;
        if !payload::is_commit_sha(sha) || !payload::is_repository(repository) {
            return None;
        }
        let settings = &self.settings;
        let (kind, target, provider) = match attributes.get(PROVIDER_ATTRIBUTE).map(String::as_str)
        {
            Some("github") => (
                ProviderKind::GitHub,
                Target::GitHub,
                settings.github.as_ref()?,
            ),
            Some("gitlab") => (
                ProviderKind::GitLab,
                Target::GitLab,
                settings.gitlab.as_ref()?,
            ),
            Some(_) => return None,
            None => match (&settings.github, &settings.gitlab) {
                (Some(github), _) => (ProviderKind::GitHub, Target::GitHub, github),
                (None, Some(gitlab)) => (ProviderKind::GitLab, Target::GitLab, gitlab),
                (None, None) => return None,
            },
        };
        let (path, body) =
            payload::commit_status(kind, repository, sha, &settings.status_context, report);
        let run = &report.run;
        Some(NewDelivery {
            id: DeliveryId::generate(),
            webhook_id: None,
            target,
            url: Some(format!("{}{path}", provider.api)),
            event: WebhookEvent::RunFinished,
            project_id: run.project_id,
            run_id: run.id,
            dedupe_key: format!("status:{}:{finished_at}", run.id),
            body,
        })
    }
}

/// The answer of the runs service, or `None` when the run is gone.
fn found<T>(answer: Result<T, verdict_bus::RequestError>) -> Result<Option<T>, Error> {
    match answer {
        Ok(found) => Ok(Some(found)),
        Err(verdict_bus::RequestError::Service(err)) if err.code == ErrorCode::NotFound => Ok(None),
        Err(err) => Err(Error::Dependency(access::service_error(err))),
    }
}
