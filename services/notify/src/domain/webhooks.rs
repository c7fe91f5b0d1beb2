//! Project webhooks: managed by the project's maintainers, checked against the
//! destination rules when saved.

use std::sync::Arc;

use ipnet::IpNet;
use tokio::sync::Notify;
use verdict_bus::{access, Bus};
use verdict_contracts::auth::{Principal, Role};
use verdict_contracts::idempotency::Keyed;
use verdict_contracts::ids::{ProjectId, WebhookId};
use verdict_contracts::notify::{
    self, CreateWebhook, CreatedWebhook, Delivery, DeliveryRef, ListDeliveries, ListWebhooks,
    UpdateWebhook, Webhook, WebhookEvent, WebhookRef,
};
use verdict_contracts::page::{encode_cursor, Page, PageRequest};
use verdict_contracts::system::Empty;
use verdict_contracts::Timestamp;
use verdict_store::at_rest::AtRest;
use verdict_store::idempotency::{keyed, Recall};
use verdict_store::rusqlite::Connection;
use verdict_store::Store;

use super::destination;
use super::signing;
use crate::store::{self, WebhookRow};
use crate::Error;

/// The webhooks of every project, and what requests about them need.
#[derive(Clone)]
pub struct Webhooks {
    pub store: Store,
    /// How webhook secrets are kept in the store.
    pub at_rest: AtRest,
    pub bus: Bus,
    pub allowed_networks: Arc<Vec<IpNet>>,
    pub max_webhooks: u32,
    /// Wakes the sender when a delivery becomes due now.
    pub due: Arc<Notify>,
}

impl Webhooks {
    /// The project's id, once the principal is a maintainer there.
    async fn authorize(&self, principal: &Principal, project: &str) -> Result<ProjectId, Error> {
        access::authorize(&self.bus, principal, project, Role::Maintainer)
            .await
            .map(|access| access.project_id)
            .map_err(Error::Dependency)
    }

    async fn checked_url(&self, url: &str) -> Result<String, Error> {
        let parsed =
            destination::parse_url(url).map_err(|message| Error::invalid("url", message))?;
        destination::resolve(&parsed, &self.allowed_networks)
            .await
            .map_err(|message| Error::invalid("url", message))?;
        Ok(url.to_owned())
    }

    pub async fn create(
        &self,
        principal: &Principal,
        request: Keyed<CreateWebhook>,
    ) -> Result<CreatedWebhook, Error> {
        let keyed = keyed(principal, &notify::CREATE_WEBHOOK, &request);
        let CreateWebhook { project, webhook } = request.request;
        let project_id = self.authorize(principal, &project).await?;
        let url = self.checked_url(&webhook.url).await?;
        let now = Timestamp::now().millis();
        let id = WebhookId::generate();
        let secret = signing::new_secret();
        let row = WebhookRow {
            secret: self.at_rest.store(&id.to_string(), secret.as_bytes())?,
            id,
            project_id,
            url,
            events: events(webhook.events)?,
            format: webhook.format.unwrap_or_default(),
            enabled: webhook.enabled.unwrap_or(true),
            disabled_reason: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        let max = self.max_webhooks;
        self.store
            .write(move |conn| {
                let tx = conn.transaction()?;
                if let Some(keyed) = &keyed {
                    match keyed.recall::<CreatedWebhook>(&tx, now)? {
                        Recall::Repeat(created) => return Ok(created),
                        Recall::Conflict => return Err(Error::KeyReused),
                        Recall::New => {}
                    }
                }
                if store::count_webhooks(&tx, project_id)? >= max {
                    return Err(Error::Conflict(format!(
                        "a project may have at most {max} webhooks"
                    )));
                }
                store::insert_webhook(&tx, &row)?;
                let created = CreatedWebhook {
                    webhook: row.to_api(),
                    secret,
                };
                if let Some(keyed) = &keyed {
                    keyed.remember(&tx, &created, now)?;
                }
                tx.commit()?;
                Ok(created)
            })
            .await
    }

    pub async fn list(
        &self,
        principal: &Principal,
        request: ListWebhooks,
    ) -> Result<Page<Webhook>, Error> {
        let project_id = self.authorize(principal, &request.project).await?;
        let (after, limit) = page_of(&request.page)?;
        let rows = self
            .store
            .read(move |conn| Ok::<_, Error>(store::webhooks(conn, project_id, &after, limit + 1)?))
            .await?;
        Ok(Page::from_overfetched(
            rows,
            limit,
            |row| encode_cursor(&[&row.id.to_string()]),
            |row| row.to_api(),
        ))
    }

    async fn row(&self, project_id: ProjectId, webhook_id: WebhookId) -> Result<WebhookRow, Error> {
        self.store
            .read(move |conn| Ok::<_, Error>(store::webhook(conn, project_id, webhook_id)?))
            .await?
            .ok_or(Error::NotFound("webhook"))
    }

    pub async fn get(&self, principal: &Principal, request: WebhookRef) -> Result<Webhook, Error> {
        let project_id = self.authorize(principal, &request.project).await?;
        Ok(self.row(project_id, request.webhook_id).await?.to_api())
    }

    pub async fn update(
        &self,
        principal: &Principal,
        request: UpdateWebhook,
    ) -> Result<Webhook, Error> {
        let project_id = self.authorize(principal, &request.project).await?;
        let changes = request.changes;
        let url = match &changes.url {
            Some(url) => Some(self.checked_url(url).await?),
            None => None,
        };
        let events = changes.events.map(events).transpose()?;
        let webhook_id = request.webhook_id;
        self.store
            .write(move |conn| {
                let tx = conn.transaction()?;
                let mut row = store::webhook(&tx, project_id, webhook_id)?
                    .ok_or(Error::NotFound("webhook"))?;
                if let Some(url) = url {
                    row.url = url;
                }
                if let Some(events) = events {
                    row.events = events;
                }
                if let Some(format) = changes.format {
                    row.format = format;
                }
                if let Some(enabled) = changes.enabled {
                    if enabled && !row.enabled {
                        // Enabled again by its owner: it starts with a clean record.
                        row.disabled_reason = None;
                        row.failing_since = None;
                    }
                    row.enabled = enabled;
                }
                row.updated_at = Timestamp::now().millis();
                store::update_webhook(&tx, &row)?;
                tx.commit()?;
                Ok(row.to_api())
            })
            .await
    }

    pub async fn delete(&self, principal: &Principal, request: WebhookRef) -> Result<Empty, Error> {
        let project_id = self.authorize(principal, &request.project).await?;
        let deleted = self
            .store
            .write(move |conn| {
                Ok::<_, Error>(store::delete_webhook(conn, project_id, request.webhook_id)?)
            })
            .await?;
        if deleted {
            Ok(Empty {})
        } else {
            Err(Error::NotFound("webhook"))
        }
    }

    pub async fn deliveries(
        &self,
        principal: &Principal,
        request: ListDeliveries,
    ) -> Result<Page<Delivery>, Error> {
        let project_id = self.authorize(principal, &request.project).await?;
        let webhook = self.row(project_id, request.webhook_id).await?;
        let (before, limit) = page_of(&request.page)?;
        let rows = self
            .store
            .read(move |conn| {
                Ok::<_, Error>(store::deliveries(conn, webhook.id, &before, limit + 1)?)
            })
            .await?;
        Ok(Page::from_overfetched(
            rows,
            limit,
            |delivery| encode_cursor(&[&delivery.id.to_string()]),
            |delivery| delivery,
        ))
    }

    pub async fn redeliver(
        &self,
        principal: &Principal,
        request: DeliveryRef,
    ) -> Result<Delivery, Error> {
        let project_id = self.authorize(principal, &request.project).await?;
        let webhook = self.row(project_id, request.webhook_id).await?;
        let delivery_id = request.delivery_id;
        let delivery = self
            .store
            .write(move |conn| {
                let tx = conn.transaction()?;
                if !store::redeliver(&tx, webhook.id, delivery_id, Timestamp::now().millis())? {
                    return Err(Error::NotFound("delivery"));
                }
                let delivery =
                    store::delivery(&tx, delivery_id)?.ok_or(Error::NotFound("delivery"))?;
                tx.commit()?;
                Ok(delivery)
            })
            .await?;
        self.due.notify_one();
        Ok(delivery)
    }
}

/// A subscription's events: at least one, each once, in a stable order.
fn events(mut events: Vec<WebhookEvent>) -> Result<Vec<WebhookEvent>, Error> {
    events.sort();
    events.dedup();
    if events.is_empty() {
        return Err(Error::invalid(
            "events",
            "must name at least one of run.finished, run.failed, failure.new, test.flaky",
        ));
    }
    Ok(events)
}

/// The key a page starts after and its size.
fn page_of(page: &PageRequest) -> Result<(String, u32), Error> {
    let after = page
        .single_key_after()
        .map_err(|_| Error::invalid("cursor", "is not a cursor of this list"))?;
    Ok((after, page.effective_limit()))
}

/// Seals the secrets stored plain, when a key encryption key is set: those of webhooks
/// created before it was. Answers how many it sealed.
pub fn seal_plain_secrets(conn: &mut Connection, at_rest: &AtRest) -> Result<usize, Error> {
    let tx = conn.transaction()?;
    let mut sealed = 0;
    for (id, stored) in store::webhook_secrets(&tx)? {
        if at_rest.needs_sealing(&stored) {
            store::replace_secret(&tx, id, &at_rest.store(&id.to_string(), &stored)?)?;
            sealed += 1;
        }
    }
    tx.commit()?;
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use verdict_contracts::notify::WebhookFormat;
    use verdict_store::at_rest::KeyEncryptionKey;

    use super::*;

    #[test]
    fn secrets_stored_plain_are_sealed_once_a_key_is_set_and_open_to_the_same() {
        let mut conn = store::MIGRATIONS.in_memory().unwrap();
        let plain = signing::new_secret();
        let id = WebhookId::generate();
        let row = WebhookRow {
            id,
            project_id: ProjectId::generate(),
            url: "https://hooks.example/x".into(),
            events: vec![WebhookEvent::RunFinished],
            format: WebhookFormat::Verdict,
            secret: plain.clone().into_bytes(),
            enabled: true,
            disabled_reason: None,
            failing_since: None,
            created_at: 1,
            updated_at: 1,
        };
        store::insert_webhook(&conn, &row).unwrap();
        let key = KeyEncryptionKey::from_base64(&STANDARD.encode([9u8; 32])).unwrap();
        let at_rest = AtRest::Sealed(Arc::new(key));

        assert_eq!(seal_plain_secrets(&mut conn, &at_rest).unwrap(), 1);
        assert_eq!(seal_plain_secrets(&mut conn, &at_rest).unwrap(), 0);
        let (_, stored) = store::webhook_secrets(&conn).unwrap().remove(0);
        assert!(!stored
            .windows(plain.len())
            .any(|window| window == plain.as_bytes()));
        assert_eq!(
            at_rest.open(&id.to_string(), &stored).unwrap(),
            plain.as_bytes()
        );
    }

    #[test]
    fn events_are_deduplicated_and_required() {
        let events = events(vec![
            WebhookEvent::RunFailed,
            WebhookEvent::RunFinished,
            WebhookEvent::RunFailed,
        ])
        .unwrap();
        assert_eq!(events, [WebhookEvent::RunFinished, WebhookEvent::RunFailed]);
        assert!(super::events(vec![])
            .unwrap_err()
            .to_string()
            .contains("`events`"));
    }
}
