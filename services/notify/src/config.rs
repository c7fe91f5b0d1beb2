use std::time::Duration;

use ipnet::IpNet;
use verdict_bus::BusSettings;
use verdict_settings::{Env, SettingError};
use verdict_store::at_rest::AtRest;
use verdict_store::StoreSettings;

use crate::domain::retry::RetryPolicy;

/// Everything the notify service is configured with, read once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bus: BusSettings,
    /// `VERDICT_NOTIFY_DB`, else `<VERDICT_DATA_DIR>/notify.db`.
    pub store: StoreSettings,
    /// `VERDICT_STREAM_REPLICAS`, default 1: replicas of the events stream, should this
    /// service create it.
    pub replicas: usize,
    pub delivery: DeliverySettings,
    /// `VERDICT_NOTIFY_MAX_WEBHOOKS`, default 100: webhooks one project may have.
    pub max_webhooks: u32,
    /// `VERDICT_PUBLIC_URL`: the origin of the run pages deliveries link to.
    pub public_url: Option<String>,
    pub github: Option<Provider>,
    pub gitlab: Option<Provider>,
    /// `VERDICT_NOTIFY_STATUS_CONTEXT`, default `verdict`: the context (GitHub) or name
    /// (GitLab) of the commit statuses.
    pub status_context: String,
    /// `VERDICT_KEY_ENCRYPTION_KEY`: webhook secrets are stored sealed under it.
    pub key_encryption: AtRest,
}

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// `VERDICT_NOTIFY_ALLOWED_NETWORKS`: private, loopback or link-local networks
    /// webhooks may still reach.
    pub allowed_networks: Vec<IpNet>,
    /// `VERDICT_NOTIFY_TIMEOUT`, default 10s: one attempt, connection to last byte.
    pub timeout: Duration,
    /// `VERDICT_NOTIFY_RESPONSE_LIMIT`, default 65536: bytes of a response read.
    pub response_limit: usize,
    pub retry: RetryPolicy,
    /// `VERDICT_NOTIFY_DISABLE_AFTER`, default 3d: a webhook failing this long is
    /// disabled.
    pub disable_after: Duration,
    /// `VERDICT_NOTIFY_CONCURRENCY`, default 32: attempts under way at once.
    pub concurrency: usize,
}

/// A commit status provider: the API's base URL and the token it takes.
#[derive(Clone)]
pub struct Provider {
    pub api: String,
    pub token: String,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("api", &self.api)
            .field("token", &verdict_settings::REDACTED)
            .finish()
    }
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let networks = env.string("VERDICT_NOTIFY_ALLOWED_NETWORKS", "");
        let allowed_networks =
            verdict_settings::parse_networks(&networks).map_err(|reason| SettingError {
                name: "VERDICT_NOTIFY_ALLOWED_NETWORKS".into(),
                value: networks.clone(),
                reason,
            })?;
        let retry = RetryPolicy {
            first: env.duration("VERDICT_NOTIFY_RETRY_FIRST", Duration::from_secs(5))?,
            max: env.duration("VERDICT_NOTIFY_RETRY_MAX", Duration::from_secs(3600))?,
            give_up_after: env
                .duration("VERDICT_NOTIFY_RETRY_FOR", Duration::from_secs(24 * 3600))?,
        };
        Ok(Self {
            bus: BusSettings::from_env(env, "verdict-notify")?,
            store: StoreSettings::from_env(env, "notify")?,
            replicas: env.parse("VERDICT_STREAM_REPLICAS", 1)?,
            delivery: DeliverySettings {
                allowed_networks,
                timeout: env.duration("VERDICT_NOTIFY_TIMEOUT", Duration::from_secs(10))?,
                response_limit: env.parse("VERDICT_NOTIFY_RESPONSE_LIMIT", 64 * 1024)?,
                retry,
                disable_after: env.duration(
                    "VERDICT_NOTIFY_DISABLE_AFTER",
                    Duration::from_secs(3 * 24 * 3600),
                )?,
                concurrency: env.parse::<usize>("VERDICT_NOTIFY_CONCURRENCY", 32)?.max(1),
            },
            max_webhooks: env.parse("VERDICT_NOTIFY_MAX_WEBHOOKS", 100)?,
            public_url: env
                .get("VERDICT_PUBLIC_URL")
                .map(|url| url.trim_end_matches('/').to_owned()),
            github: provider(
                env,
                "VERDICT_NOTIFY_GITHUB_API",
                "https://api.github.com",
                "VERDICT_NOTIFY_GITHUB_TOKEN",
            )?,
            gitlab: provider(
                env,
                "VERDICT_NOTIFY_GITLAB_API",
                "https://gitlab.com/api/v4",
                "VERDICT_NOTIFY_GITLAB_TOKEN",
            )?,
            status_context: env.string("VERDICT_NOTIFY_STATUS_CONTEXT", "verdict"),
            key_encryption: AtRest::from_env(env)?,
        })
    }
}

/// A provider is configured by its token; without one, no statuses are sent to it.
fn provider(
    env: &Env,
    api_variable: &str,
    default_api: &str,
    token_variable: &str,
) -> Result<Option<Provider>, SettingError> {
    Ok(env.secret(token_variable)?.map(|token| Provider {
        api: env
            .string(api_variable, default_api)
            .trim_end_matches('/')
            .to_owned(),
        token,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_without_a_token_sends_nothing() {
        let env = Env::from_pairs([("VERDICT_NOTIFY_GITHUB_API", "https://ghe.example/api/v3")]);
        let settings = Settings::from_env(&env).unwrap();
        assert!(settings.github.is_none());
    }

    #[test]
    fn a_token_enables_its_provider_at_the_configured_base_url() {
        let env = Env::from_pairs([
            ("VERDICT_NOTIFY_GITLAB_API", "https://git.example/api/v4/"),
            ("VERDICT_NOTIFY_GITLAB_TOKEN", "glpat-secret"),
        ]);
        let settings = Settings::from_env(&env).unwrap();
        let gitlab = settings.gitlab.unwrap();
        assert_eq!(gitlab.api, "https://git.example/api/v4");
        assert!(!format!("{gitlab:?}").contains("glpat-secret"));
    }

    #[test]
    fn allowed_networks_that_are_not_networks_are_refused_by_name() {
        let env = Env::from_pairs([("VERDICT_NOTIFY_ALLOWED_NETWORKS", "127.0.0.1,lan")]);
        let err = Settings::from_env(&env).unwrap_err();
        assert_eq!(err.name, "VERDICT_NOTIFY_ALLOWED_NETWORKS");
    }
}
