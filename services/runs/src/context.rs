//! What every runs operation works with.

use std::sync::{Arc, Mutex};

use verdict_bus::access::{self, Access};
use verdict_bus::{Bus, Client};
use verdict_contracts::auth::{Principal, Role};
use verdict_contracts::events::Event;
use verdict_contracts::ids::RunId;
use verdict_store::Store;

use crate::outbox::Outbox;
use crate::store::{self, KnownTests, RunRow};
use crate::Error;

/// The runs service's state. Cheap to clone.
#[derive(Clone)]
pub struct Runs {
    pub store: Store,
    pub bus: Bus,
    pub outbox: Outbox,
    /// Shared by every writer of results (ingest and imports); locked only inside
    /// the store's single writer, so never contended.
    pub known_tests: Arc<Mutex<KnownTests>>,
}

impl Runs {
    pub fn client(&self) -> &Client {
        self.bus.client()
    }

    /// Requires `needed` in a project for `principal`.
    pub async fn authorize(
        &self,
        principal: &Principal,
        project: &str,
        needed: Role,
    ) -> Result<Access, Error> {
        access::authorize(&self.bus, principal, project, needed)
            .await
            .map_err(Error::Refused)
    }

    /// A run the principal may act on with `needed`; a run in a project they cannot
    /// see is "not found", like one that does not exist.
    pub async fn run_for(
        &self,
        principal: &Principal,
        run_id: RunId,
        needed: Role,
    ) -> Result<RunRow, Error> {
        let run = self
            .store
            .read(move |conn| Ok::<_, Error>(store::run(conn, run_id)?))
            .await?
            .ok_or(Error::NotFound("run"))?;
        self.authorize(principal, &run.project_id.to_string(), needed)
            .await?;
        Ok(run)
    }

    /// Publishes an event for live viewers. The events stream keeps it; losing one to a
    /// broken connection is logged, since the store already holds the truth.
    pub async fn publish(&self, event: &Event) {
        match serde_json::to_vec(event) {
            Ok(payload) => {
                let trace = verdict_bus::trace::current_headers();
                let published = self
                    .client()
                    .publish_with_headers(event.subject(), trace, payload.into())
                    .await;
                if let Err(err) = published {
                    tracing::warn!(error = %err, subject = %event.subject(), "could not publish an event");
                }
            }
            Err(err) => tracing::error!(error = %err, "could not encode an event"),
        }
    }
}
