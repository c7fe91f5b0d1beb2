//! Makes the attempts: takes due deliveries from the store, sends each (signed, for
//! webhooks), and records what came of it with the next attempt's time. Deliveries
//! live in the store, so a restart loses none; one taken for an attempt is held for a
//! lease, after which it is due again if the process died meanwhile (at least once, with
//! the same `webhook-id`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, USER_AGENT};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use verdict_contracts::notify::DeliveryStatus;
use verdict_contracts::Timestamp;
use verdict_store::at_rest::AtRest;
use verdict_store::Store;

use crate::config::{DeliverySettings, Provider};
use crate::domain::{destination, signing};
use crate::store::{self, Claimed, Outcome, Target};
use crate::{Error, Settings};

/// The longest wait between two looks at the store, should a wake-up be missed.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// The delivery loop and what it sends with.
pub struct Sender {
    store: Store,
    settings: DeliverySettings,
    github: Option<Provider>,
    gitlab: Option<Provider>,
    /// For webhooks: every address it connects to is checked.
    webhooks: reqwest::Client,
    /// For the providers' APIs, whose base URLs the operator set.
    providers: reqwest::Client,
    due: Arc<Notify>,
    /// How webhook secrets are kept in the store.
    at_rest: AtRest,
}

/// What one attempt came to, before it is recorded.
struct Attempted {
    succeeded: bool,
    response_status: Option<u16>,
    latency: Option<Duration>,
    error: Option<String>,
}

impl Attempted {
    fn refused(error: String) -> Self {
        Self {
            succeeded: false,
            response_status: None,
            latency: None,
            error: Some(error),
        }
    }
}

fn client(settings: &DeliverySettings, guarded: bool) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .default_headers(HeaderMap::from_iter([
            (
                USER_AGENT,
                HeaderValue::from_static(concat!("Verdict/", env!("CARGO_PKG_VERSION"))),
            ),
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        ]));
    if guarded {
        builder = builder.dns_resolver(Arc::new(destination::GuardedResolver {
            allowed: Arc::new(settings.allowed_networks.clone()),
        }));
    }
    builder.build().map_err(Error::HttpClient)
}

impl Sender {
    pub fn new(store: Store, settings: &Settings, due: Arc<Notify>) -> Result<Self, Error> {
        Ok(Self {
            store,
            webhooks: client(&settings.delivery, true)?,
            providers: client(&settings.delivery, false)?,
            settings: settings.delivery.clone(),
            github: settings.github.clone(),
            gitlab: settings.gitlab.clone(),
            at_rest: settings.key_encryption.clone(),
            due,
        })
    }

    /// Sends due deliveries until `shutdown`; attempts under way are finished first.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let batch = u32::try_from(self.settings.concurrency).unwrap_or(u32::MAX);
        // A taken delivery is due again once an attempt surely ended.
        let lease = millis(self.settings.timeout * 2 + Duration::from_secs(5));
        while !shutdown.is_cancelled() {
            let now = Timestamp::now().millis();
            let claimed = self
                .store
                .write(move |conn| Ok::<_, Error>(store::claim_due(conn, now, now + lease, batch)?))
                .await?;
            if claimed.is_empty() {
                self.wait(&shutdown).await?;
                continue;
            }
            let sender = &self;
            futures::stream::iter(claimed)
                .for_each_concurrent(self.settings.concurrency, |delivery| async move {
                    if let Err(err) = sender.deliver(delivery).await {
                        tracing::error!(error = %err, "a delivery's attempt could not be recorded");
                    }
                })
                .await;
        }
        Ok(())
    }

    /// Waits until the next delivery is due, one is added, or [`IDLE_POLL`] passed.
    async fn wait(&self, shutdown: &CancellationToken) -> Result<(), Error> {
        let next = self
            .store
            .read(|conn| Ok::<_, Error>(store::next_due(conn)?))
            .await?;
        let pause = next
            .map(|at| {
                Duration::from_millis(u64::try_from(at - Timestamp::now().millis()).unwrap_or(0))
            })
            .unwrap_or(IDLE_POLL)
            .min(IDLE_POLL);
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = self.due.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
        Ok(())
    }

    async fn deliver(&self, delivery: Claimed) -> Result<(), Error> {
        if let Some(webhook) = &delivery.webhook {
            if !webhook.enabled {
                let id = delivery.id;
                return self
                    .store
                    .write(move |conn| {
                        Ok::<_, Error>(store::abandon(conn, id, "the webhook is disabled")?)
                    })
                    .await;
            }
        }
        let attempted = self.attempt(&delivery).await;
        self.record(delivery, attempted).await
    }

    async fn attempt(&self, delivery: &Claimed) -> Attempted {
        let (client, url, headers) = match (delivery.target, &delivery.webhook) {
            (Target::Webhook, Some(webhook)) => {
                match self
                    .webhook_request(&delivery.id.to_string(), webhook, &delivery.body)
                    .await
                {
                    Ok((url, headers)) => (&self.webhooks, url, headers),
                    Err(refused) => return Attempted::refused(refused),
                }
            }
            (Target::GitHub, _) => match &self.github {
                Some(github) => (
                    &self.providers,
                    delivery.url.clone().unwrap_or_default(),
                    HeaderMap::from_iter([
                        (
                            reqwest::header::AUTHORIZATION,
                            secret_header(&format!("Bearer {}", github.token)),
                        ),
                        (
                            reqwest::header::ACCEPT,
                            HeaderValue::from_static("application/vnd.github+json"),
                        ),
                    ]),
                ),
                None => return Attempted::refused("no GitHub token is configured".into()),
            },
            (Target::GitLab, _) => match &self.gitlab {
                Some(gitlab) => (
                    &self.providers,
                    delivery.url.clone().unwrap_or_default(),
                    HeaderMap::from_iter([(
                        reqwest::header::HeaderName::from_static("private-token"),
                        secret_header(&gitlab.token),
                    )]),
                ),
                None => return Attempted::refused("no GitLab token is configured".into()),
            },
            (Target::Webhook, None) => return Attempted::refused("the webhook is gone".into()),
        };
        let started = Instant::now();
        let sent = client
            .post(url)
            .headers(headers)
            .body(delivery.body.clone())
            .send()
            .await;
        match sent {
            Ok(mut response) => {
                let status = response.status();
                // Read (and drop) a bounded part of the body, so the connection can be
                // used again without a large answer costing more than the cap.
                let mut read = 0;
                while read < self.settings.response_limit {
                    match response.chunk().await {
                        Ok(Some(chunk)) => read += chunk.len(),
                        Ok(None) | Err(_) => break,
                    }
                }
                Attempted {
                    succeeded: status.is_success(),
                    response_status: Some(status.as_u16()),
                    latency: Some(started.elapsed()),
                    error: (!status.is_success()).then(|| {
                        if status.is_redirection() {
                            format!("answered {status}; redirects are not followed")
                        } else {
                            format!("answered {status}")
                        }
                    }),
                }
            }
            Err(err) => Attempted {
                succeeded: false,
                response_status: None,
                latency: Some(started.elapsed()),
                error: Some(describe(&err)),
            },
        }
    }

    /// A webhook delivery's URL and its Standard Webhooks headers. A URL whose host is
    /// an address is checked here: such hosts never reach the resolver.
    async fn webhook_request(
        &self,
        id: &str,
        webhook: &store::ClaimedWebhook,
        body: &[u8],
    ) -> Result<(String, HeaderMap), String> {
        let url = destination::parse_url(&webhook.url)?;
        let host = url.host_str().unwrap_or_default();
        if host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok()
        {
            destination::resolve(&url, &self.settings.allowed_networks).await?;
        }
        let timestamp = Timestamp::now().secs();
        let secret = self
            .at_rest
            .open(&webhook.id.to_string(), &webhook.secret)
            .map_err(|err| err.to_string())?;
        let secret =
            std::str::from_utf8(&secret).map_err(|_| "the webhook's secret is unusable")?;
        let signature = signing::signature(secret, id, timestamp, body)
            .ok_or("the webhook's secret is unusable")?;
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ] {
            let value = HeaderValue::from_str(&value).map_err(|_| "unusable header value")?;
            headers.insert(name, value);
        }
        Ok((url.to_string(), headers))
    }

    async fn record(&self, delivery: Claimed, attempted: Attempted) -> Result<(), Error> {
        let now = Timestamp::now().millis();
        let failed = delivery.attempts + 1;
        let next_attempt_at = (!attempted.succeeded)
            .then(|| {
                let jitter = rand::thread_rng().gen::<f64>();
                self.settings
                    .retry
                    .next_attempt(delivery.created_at, now, failed, jitter)
            })
            .flatten();
        let outcome = Outcome {
            at: now,
            status: if attempted.succeeded {
                DeliveryStatus::Succeeded
            } else if next_attempt_at.is_some() {
                DeliveryStatus::Pending
            } else {
                DeliveryStatus::Failed
            },
            next_attempt_at,
            response_status: attempted.response_status,
            latency_ms: attempted
                .latency
                .map(|latency| u64::try_from(latency.as_millis()).unwrap_or(u64::MAX)),
            error: attempted.error,
        };
        crate::metrics::attempted(delivery.target, attempted.succeeded, attempted.latency);
        let disable_after = millis(self.settings.disable_after);
        self.store
            .write(move |conn| {
                let tx = conn.transaction()?;
                store::record_attempt(&tx, delivery.id, &outcome)?;
                if let Some(webhook) = &delivery.webhook {
                    if attempted.succeeded {
                        store::webhook_succeeded(&tx, webhook.id)?;
                    } else if let Some(since) = store::webhook_failed(&tx, webhook.id, now)? {
                        if now - since >= disable_after {
                            let reason = format!(
                                "disabled at {}: every delivery failed since {} (the last: {})",
                                Timestamp::from_millis(now).to_rfc3339(),
                                Timestamp::from_millis(since).to_rfc3339(),
                                outcome.error.as_deref().unwrap_or("failed"),
                            );
                            tracing::warn!(webhook_id = %webhook.id, %reason, "webhook disabled");
                            store::disable_webhook(&tx, webhook.id, &reason, now)?;
                        }
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }
}

/// A token as a header value, marked sensitive so it is never logged.
fn secret_header(value: &str) -> HeaderValue {
    let mut header = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    header.set_sensitive(true);
    header
}

/// Why a request failed, without its URL: its error and their sources.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut text = if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
