//! All SQL of the notify service. Functions take a connection so callers choose the
//! transaction; times are Unix milliseconds.

use verdict_contracts::ids::{DeliveryId, ProjectId, RunId, WebhookId};
use verdict_contracts::notify::{Delivery, DeliveryStatus, Webhook, WebhookEvent, WebhookFormat};
use verdict_contracts::Timestamp;
use verdict_store::rusqlite::types::Type;
use verdict_store::rusqlite::{self, params, Connection, OptionalExtension, Row};
use verdict_store::{parsed, Migrations};

pub const MIGRATIONS: Migrations = Migrations(&[
    include_str!("../migrations/001_webhooks_deliveries.sql"),
    // The table of idempotency keys, which every service that remembers answers shares.
    verdict_store::idempotency::MIGRATION,
]);

/// A webhook as stored, with its secret as the database keeps it (sealed when a key
/// encryption key is set: see `verdict_store::at_rest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub id: WebhookId,
    pub project_id: ProjectId,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub format: WebhookFormat,
    pub secret: Vec<u8>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl WebhookRow {
    pub fn to_api(&self) -> Webhook {
        Webhook {
            id: self.id,
            project_id: self.project_id,
            url: self.url.clone(),
            events: self.events.clone(),
            format: self.format,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason.clone(),
            failing_since: self
                .failing_since
                .map(|at| Timestamp::from_millis(at).to_rfc3339()),
            created_at: Timestamp::from_millis(self.created_at).to_rfc3339(),
            updated_at: Timestamp::from_millis(self.updated_at).to_rfc3339(),
        }
    }
}

fn conversion(column: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, message.into())
}

const WEBHOOK_COLUMNS: &str = "id, project_id, url, events, format, secret, enabled, disabled_reason, failing_since, created_at, updated_at";

fn webhook_row(row: &Row<'_>) -> rusqlite::Result<WebhookRow> {
    let events: String = row.get(3)?;
    let format: String = row.get(4)?;
    Ok(WebhookRow {
        id: parsed(row, 0)?,
        project_id: row.get(1)?,
        url: row.get(2)?,
        events: events
            .split(',')
            .filter(|event| !event.is_empty())
            .map(|event| {
                WebhookEvent::parse(event).ok_or_else(|| conversion(3, format!("event {event}")))
            })
            .collect::<Result<_, _>>()?,
        format: WebhookFormat::parse(&format).ok_or_else(|| conversion(4, format))?,
        secret: row.get(5)?,
        enabled: row.get(6)?,
        disabled_reason: row.get(7)?,
        failing_since: row.get(8)?,
        created_at: row.get(9)?,
        updated_at: row.get(10)?,
    })
}

fn events_text(events: &[WebhookEvent]) -> String {
    events
        .iter()
        .map(|event| event.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn insert_webhook(conn: &Connection, webhook: &WebhookRow) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))?
    .execute(params![
        webhook.id.to_string(),
        webhook.project_id,
        webhook.url,
        events_text(&webhook.events),
        webhook.format.as_str(),
        webhook.secret,
        webhook.enabled,
        webhook.disabled_reason,
        webhook.failing_since,
        webhook.created_at,
        webhook.updated_at,
    ])?;
    Ok(())
}

/// Every webhook's id and secret as stored.
pub fn webhook_secrets(conn: &Connection) -> rusqlite::Result<Vec<(WebhookId, Vec<u8>)>> {
    let mut statement = conn.prepare_cached("SELECT id, secret FROM webhooks")?;
    let rows = statement.query_map([], |row| Ok((parsed(row, 0)?, row.get(1)?)))?;
    rows.collect()
}

pub fn replace_secret(conn: &Connection, id: WebhookId, secret: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE webhooks SET secret = ?2 WHERE id = ?1")?
        .execute(params![id.to_string(), secret])?;
    Ok(())
}

/// Writes every changeable field of `webhook` back.
pub fn update_webhook(conn: &Connection, webhook: &WebhookRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE webhooks SET url = ?2, events = ?3, format = ?4, enabled = ?5,
            disabled_reason = ?6, failing_since = ?7, updated_at = ?8 WHERE id = ?1",
    )?
    .execute(params![
        webhook.id.to_string(),
        webhook.url,
        events_text(&webhook.events),
        webhook.format.as_str(),
        webhook.enabled,
        webhook.disabled_reason,
        webhook.failing_since,
        webhook.updated_at,
    ])?;
    Ok(())
}

pub fn webhook(
    conn: &Connection,
    project_id: ProjectId,
    id: WebhookId,
) -> rusqlite::Result<Option<WebhookRow>> {
    conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1 AND project_id = ?2"
    ))?
    .query_row(params![id.to_string(), project_id], webhook_row)
    .optional()
}

/// A project's webhooks after `after` (an id), in id order, at most `limit`.
pub fn webhooks(
    conn: &Connection,
    project_id: ProjectId,
    after: &str,
    limit: u32,
) -> rusqlite::Result<Vec<WebhookRow>> {
    conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE project_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
    ))?
    .query_map(params![project_id, after, limit], webhook_row)?
    .collect()
}

pub fn count_webhooks(conn: &Connection, project_id: ProjectId) -> rusqlite::Result<u32> {
    conn.prepare_cached("SELECT COUNT(*) FROM webhooks WHERE project_id = ?1")?
        .query_row(params![project_id], |row| row.get(0))
}

/// The project's enabled webhooks.
pub fn enabled_webhooks(
    conn: &Connection,
    project_id: ProjectId,
) -> rusqlite::Result<Vec<WebhookRow>> {
    conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE project_id = ?1 AND enabled = 1 ORDER BY id"
    ))?
    .query_map(params![project_id], webhook_row)?
    .collect()
}

pub fn delete_webhook(
    conn: &Connection,
    project_id: ProjectId,
    id: WebhookId,
) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM webhooks WHERE id = ?1 AND project_id = ?2")?
        .execute(params![id.to_string(), project_id])?
        > 0)
}

/// Where a delivery goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Webhook,
    GitHub,
    GitLab,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Webhook => "webhook",
            Target::GitHub => "github",
            Target::GitLab => "gitlab",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Target::Webhook, Target::GitHub, Target::GitLab]
            .into_iter()
            .find(|target| target.as_str() == text)
    }
}

/// A delivery to create.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: DeliveryId,
    pub webhook_id: Option<WebhookId>,
    pub target: Target,
    /// The provider API's URL; a webhook's deliveries go to its URL of the moment.
    pub url: Option<String>,
    pub event: WebhookEvent,
    pub project_id: ProjectId,
    pub run_id: RunId,
    pub dedupe_key: String,
    pub body: Vec<u8>,
}

/// Creates the delivery unless one with its `dedupe_key` exists; answers whether it
/// did. It is due at once.
pub fn insert_delivery(
    conn: &Connection,
    delivery: &NewDelivery,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO deliveries (id, webhook_id, target, url, event, project_id, run_id,
                dedupe_key, body, status, created_at, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?10)
             ON CONFLICT (dedupe_key) DO NOTHING",
        )?
        .execute(params![
            delivery.id.to_string(),
            delivery.webhook_id.map(|id| id.to_string()),
            delivery.target.as_str(),
            delivery.url,
            delivery.event.as_str(),
            delivery.project_id,
            delivery.run_id,
            delivery.dedupe_key,
            delivery.body,
            now,
        ])?
        > 0)
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, event, run_id, status, attempts, created_at, next_attempt_at, last_attempt_at, response_status, latency_ms, error";

fn delivery_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let event: String = row.get(2)?;
    let status: String = row.get(4)?;
    let time = |at: Option<i64>| at.map(|at| Timestamp::from_millis(at).to_rfc3339());
    Ok(Delivery {
        id: parsed(row, 0)?,
        // Only webhook deliveries are read back: a commit status has no log of its own.
        webhook_id: parsed(row, 1)?,
        event: WebhookEvent::parse(&event).ok_or_else(|| conversion(2, event))?,
        run_id: row.get(3)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| conversion(4, status))?,
        attempts: row.get(5)?,
        created_at: Timestamp::from_millis(row.get(6)?).to_rfc3339(),
        next_attempt_at: time(row.get(7)?),
        last_attempt_at: time(row.get(8)?),
        response_status: row.get(9)?,
        latency_ms: row.get(10)?,
        error: row.get(11)?,
    })
}

/// A webhook's deliveries, newest first, before `before` (an id; empty for the first
/// page), at most `limit`.
pub fn deliveries(
    conn: &Connection,
    webhook_id: WebhookId,
    before: &str,
    limit: u32,
) -> rusqlite::Result<Vec<Delivery>> {
    conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries
         WHERE webhook_id = ?1 AND (?2 = '' OR id < ?2) ORDER BY id DESC LIMIT ?3"
    ))?
    .query_map(params![webhook_id.to_string(), before, limit], delivery_row)?
    .collect()
}

pub fn delivery(conn: &Connection, id: DeliveryId) -> rusqlite::Result<Option<Delivery>> {
    conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"
    ))?
    .query_row(params![id.to_string()], delivery_row)
    .optional()
}

/// Makes a webhook's delivery due at `now` again, whatever its status; answers whether
/// it exists.
pub fn redeliver(
    conn: &Connection,
    webhook_id: WebhookId,
    id: DeliveryId,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = ?3, created_at = ?3
             WHERE id = ?1 AND webhook_id = ?2",
        )?
        .execute(params![id.to_string(), webhook_id.to_string(), now])?
        > 0)
}

/// A delivery taken for an attempt, with what the attempt needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: DeliveryId,
    pub target: Target,
    /// The webhook's (for webhook deliveries).
    pub webhook: Option<ClaimedWebhook>,
    pub url: Option<String>,
    pub body: Vec<u8>,
    pub attempts: u32,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct ClaimedWebhook {
    pub id: WebhookId,
    pub url: String,
    pub secret: Vec<u8>,
    pub enabled: bool,
}

/// Takes up to `limit` deliveries due at `now`, oldest due first, and holds them until
/// `lease_until`: if the process dies mid-attempt, they are due again then.
pub fn claim_due(
    conn: &mut Connection,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> rusqlite::Result<Vec<Claimed>> {
    let tx = conn.transaction()?;
    let claimed = {
        let mut select = tx.prepare_cached(
            "SELECT d.id, d.target, d.url, d.body, d.attempts, d.created_at,
                    w.id, w.url, w.secret, w.enabled
             FROM deliveries d LEFT JOIN webhooks w ON w.id = d.webhook_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
             ORDER BY d.next_attempt_at LIMIT ?2",
        )?;
        let rows = select.query_map(params![now, limit], |row| {
            let target: String = row.get(1)?;
            Ok(Claimed {
                id: parsed(row, 0)?,
                target: Target::parse(&target).ok_or_else(|| conversion(1, target))?,
                url: row.get(2)?,
                body: row.get(3)?,
                attempts: row.get(4)?,
                created_at: row.get(5)?,
                webhook: match row.get_ref(6)?.as_str_or_null()? {
                    Some(_) => Some(ClaimedWebhook {
                        id: parsed(row, 6)?,
                        url: row.get(7)?,
                        secret: row.get(8)?,
                        enabled: row.get(9)?,
                    }),
                    None => None,
                },
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    {
        let mut lease =
            tx.prepare_cached("UPDATE deliveries SET next_attempt_at = ?2 WHERE id = ?1")?;
        for delivery in &claimed {
            lease.execute(params![delivery.id.to_string(), lease_until])?;
        }
    }
    tx.commit()?;
    Ok(claimed)
}

/// When the next pending delivery is due, if any is.
pub fn next_due(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'")?
        .query_row([], |row| row.get(0))
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub at: i64,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<i64>,
    pub response_status: Option<u16>,
    pub latency_ms: Option<u64>,
    pub error: Option<String>,
}

pub fn record_attempt(
    conn: &Connection,
    id: DeliveryId,
    outcome: &Outcome,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE deliveries SET status = ?2, attempts = attempts + 1, next_attempt_at = ?3,
            last_attempt_at = ?4, response_status = ?5, latency_ms = ?6, error = ?7
         WHERE id = ?1",
    )?
    .execute(params![
        id.to_string(),
        outcome.status.as_str(),
        outcome.next_attempt_at,
        outcome.at,
        outcome.response_status,
        outcome.latency_ms,
        outcome.error,
    ])?;
    Ok(())
}

/// Gives up a delivery without an attempt (its webhook is disabled).
pub fn abandon(conn: &Connection, id: DeliveryId, reason: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, error = ?2 WHERE id = ?1",
    )?
    .execute(params![id.to_string(), reason])?;
    Ok(())
}

/// A webhook's delivery succeeded: it is failing no more.
pub fn webhook_succeeded(conn: &Connection, webhook_id: WebhookId) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE webhooks SET failing_since = NULL WHERE id = ?1")?
        .execute(params![webhook_id.to_string()])?;
    Ok(())
}

/// A webhook's delivery failed at `now`; answers since when it has been failing.
pub fn webhook_failed(
    conn: &Connection,
    webhook_id: WebhookId,
    now: i64,
) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "UPDATE webhooks SET failing_since = COALESCE(failing_since, ?2) WHERE id = ?1
         RETURNING failing_since",
    )?
    .query_row(params![webhook_id.to_string(), now], |row| row.get(0))
    .optional()
}

/// Disables a webhook for `reason` and gives up its pending deliveries.
pub fn disable_webhook(
    conn: &Connection,
    webhook_id: WebhookId,
    reason: &str,
    now: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE webhooks SET enabled = 0, disabled_reason = ?2, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![webhook_id.to_string(), reason, now])?;
    conn.prepare_cached(
        "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL,
            error = 'the webhook was disabled'
         WHERE webhook_id = ?1 AND status = 'pending'",
    )?
    .execute(params![webhook_id.to_string()])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queries_that_grow_with_the_data_use_an_index() {
        let conn = MIGRATIONS.in_memory().unwrap();
        for (sql, index) in [
            (
                "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at LIMIT ?2",
                "deliveries_due",
            ),
            (
                "SELECT id FROM deliveries WHERE webhook_id = ?1 AND (?2 = '' OR id < ?2) ORDER BY id DESC LIMIT ?3",
                "deliveries_by_webhook",
            ),
            (
                "SELECT id FROM webhooks WHERE project_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                "webhooks_by_project",
            ),
        ] {
            let plan = verdict_store::query_plan(&conn, sql).unwrap();
            assert!(plan.contains(index), "{sql}: {plan}");
        }
    }
}
