//! Operations of the notify service: project webhooks and their delivery log.

use serde::{Deserialize, Serialize};

use crate::idempotency::Keyed;
use crate::ids::{DeliveryId, ProjectId, RunId, WebhookId};
use crate::page::{Page, PageRequest};
use crate::system::Empty;
use crate::{Operation, ServiceName};

const NOTIFY: ServiceName = ServiceName::Notify;

/// The longest webhook URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// What a webhook can be told about. `failure.new` and `test.flaky` are accepted so
/// that subscriptions can name them, but no delivery is made for them yet: the events
/// they stand for are not on the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WebhookEvent {
    /// Every run that finishes, whatever its status.
    #[serde(rename = "run.finished")]
    RunFinished,
    /// A run that finishes with status `failed`.
    #[serde(rename = "run.failed")]
    RunFailed,
    /// A run that finished with failures whose signature was seen for the first time.
    #[serde(rename = "failure.new")]
    FailureNew,
    /// A run that finished with flaky tests (failed, then passed on a retry).
    #[serde(rename = "test.flaky")]
    TestFlaky,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 4] = [
        WebhookEvent::RunFinished,
        WebhookEvent::RunFailed,
        WebhookEvent::FailureNew,
        WebhookEvent::TestFlaky,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::RunFinished => "run.finished",
            WebhookEvent::RunFailed => "run.failed",
            WebhookEvent::FailureNew => "failure.new",
            WebhookEvent::TestFlaky => "test.flaky",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == text)
    }
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WebhookFormat {
    /// `{type, timestamp, data: {run, failures, url}}`.
    #[default]
    Verdict,
    /// A Slack incoming-webhook message (`text` and `blocks`).
    Slack,
}

impl WebhookFormat {
    pub const fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Verdict => "verdict",
            WebhookFormat::Slack => "slack",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [WebhookFormat::Verdict, WebhookFormat::Slack]
            .into_iter()
            .find(|format| format.as_str() == text)
    }
}

/// The body of `POST /projects/{project}/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewWebhook {
    /// `http` or `https`, at most 2048 bytes; its host must not resolve to a private,
    /// loopback or link-local address unless the operator allowed that network.
    pub url: String,
    /// At least one.
    pub events: Vec<WebhookEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<WebhookFormat>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// The body of `PATCH /projects/{project}/webhooks/{id}`: the fields to change.
/// Enabling a webhook that was disabled for failing clears the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<WebhookEvent>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<WebhookFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A webhook as the API shows it (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    pub id: WebhookId,
    pub project_id: ProjectId,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub format: WebhookFormat,
    pub enabled: bool,
    /// Why the service disabled it (it kept failing), until it is enabled again.
    pub disabled_reason: Option<String>,
    /// Since when every delivery has failed; `null` once one succeeds.
    pub failing_since: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A new webhook with its signing secret, which is shown only in this answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_` and the base64 of 32 random bytes: the key of the Standard Webhooks
    /// signatures (HMAC-SHA256 keyed by the decoded bytes).
    pub secret: String,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeliveryStatus {
    /// Not delivered yet; tried again at `next_attempt_at`.
    Pending,
    Succeeded,
    /// Given up: retries ran out, or the webhook was disabled or deleted.
    Failed,
}

impl DeliveryStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Succeeded,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// One message to one webhook and what became of it. Its `id` is the `webhook-id`
/// header of every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event: WebhookEvent,
    pub run_id: RunId,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    /// The HTTP status of the last attempt, when the receiver answered.
    pub response_status: Option<u16>,
    /// How long the last attempt took, in milliseconds.
    pub latency_ms: Option<u64>,
    /// Why the last attempt failed, when it did.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateWebhook {
    /// Project id or slug.
    pub project: String,
    pub webhook: NewWebhook,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListWebhooks {
    pub project: String,
    #[serde(flatten)]
    pub page: PageRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRef {
    pub project: String,
    pub webhook_id: WebhookId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateWebhook {
    pub project: String,
    pub webhook_id: WebhookId,
    pub changes: WebhookChanges,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListDeliveries {
    pub project: String,
    pub webhook_id: WebhookId,
    #[serde(flatten)]
    pub page: PageRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRef {
    pub project: String,
    pub webhook_id: WebhookId,
    pub delivery_id: DeliveryId,
}

pub const CREATE_WEBHOOK: Operation<Keyed<CreateWebhook>, CreatedWebhook> =
    Operation::new(NOTIFY, "create_webhook");
pub const LIST_WEBHOOKS: Operation<ListWebhooks, Page<Webhook>> =
    Operation::query(NOTIFY, "list_webhooks");
pub const GET_WEBHOOK: Operation<WebhookRef, Webhook> = Operation::query(NOTIFY, "get_webhook");
pub const UPDATE_WEBHOOK: Operation<UpdateWebhook, Webhook> =
    Operation::new(NOTIFY, "update_webhook");
pub const DELETE_WEBHOOK: Operation<WebhookRef, Empty> = Operation::new(NOTIFY, "delete_webhook");
pub const LIST_DELIVERIES: Operation<ListDeliveries, Page<Delivery>> =
    Operation::query(NOTIFY, "list_deliveries");
/// Sends a delivery again, with the same `webhook-id`, whatever its status.
pub const REDELIVER: Operation<DeliveryRef, Delivery> = Operation::new(NOTIFY, "redeliver");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_spelled_as_the_api_names_them() {
        for event in WebhookEvent::ALL {
            let json = serde_json::to_value(event).unwrap();
            assert_eq!(json, event.as_str());
            assert_eq!(WebhookEvent::parse(event.as_str()), Some(event));
        }
    }

    #[test]
    fn a_created_webhook_shows_its_secret_beside_the_webhooks_fields() {
        let created = CreatedWebhook {
            webhook: Webhook {
                id: WebhookId::generate(),
                project_id: ProjectId::generate(),
                url: "https://example.com/hook".into(),
                events: vec![WebhookEvent::RunFailed],
                format: WebhookFormat::Slack,
                enabled: true,
                disabled_reason: None,
                failing_since: None,
                created_at: "2026-12-06T00:00:00Z".into(),
                updated_at: "2026-12-06T00:00:00Z".into(),
            },
            secret: "whsec_abc".into(),
        };
        let json = serde_json::to_value(&created).unwrap();
        assert_eq!(json["secret"], "whsec_abc");
        assert_eq!(json["format"], "slack");
        assert_eq!(json["events"][0], "run.failed");
    }
}
