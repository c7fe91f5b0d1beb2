use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_nats::{Client, ConnectOptions, Event};

use verdict_settings::{Env, SettingError};

use crate::backoff::{retry_within, Pauses};
use crate::BusError;

/// Where NATS is looked for when `NATS_URL` is unset.
pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// How a process reaches NATS. Parsed once from configuration and passed down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusSettings {
    /// One URL or a comma-separated list of cluster seed URLs.
    pub url: String,
    /// Name reported to the server (visible in `nats server report connections`).
    pub connection_name: String,
    /// How long to keep retrying the first connection before giving up.
    pub connect_deadline: Duration,
    /// Default timeout of a request/reply call.
    pub request_timeout: Duration,
    /// How long an idempotent request keeps being retried while no instance of its
    /// service is there to answer (a restart or an upgrade in progress).
    pub retry_budget: Duration,
    /// Where the process writes the instance id it registered on the bus with, for
    /// `verdict healthcheck` (`VERDICT_INSTANCE_FILE`, default
    /// `<VERDICT_DATA_DIR>/<connection name>.instance`); `None` writes none.
    pub instance_file: Option<PathBuf>,
}

impl BusSettings {
    /// `NATS_URL` or `NATS_URL_FILE` (default `nats://127.0.0.1:4222`), `VERDICT_NATS_CONNECT_TIMEOUT`
    /// (default 30s), `VERDICT_BUS_REQUEST_TIMEOUT` (default 5s) and
    /// `VERDICT_BUS_RETRY_BUDGET` (default 5s), `VERDICT_INSTANCE_FILE` (default
    /// `<VERDICT_DATA_DIR>/<connection_name>.instance`).
    pub fn from_env(env: &Env, connection_name: &str) -> Result<Self, SettingError> {
        let defaults = Self::new(DEFAULT_URL, connection_name);
        Ok(Self {
            // It holds the process's NATS password.
            url: env
                .secret("NATS_URL")?
                .unwrap_or_else(|| DEFAULT_URL.to_owned()),
            connection_name: connection_name.to_owned(),
            connect_deadline: env
                .duration("VERDICT_NATS_CONNECT_TIMEOUT", defaults.connect_deadline)?,
            request_timeout: env
                .duration("VERDICT_BUS_REQUEST_TIMEOUT", defaults.request_timeout)?,
            retry_budget: env.duration("VERDICT_BUS_RETRY_BUDGET", defaults.retry_budget)?,
            instance_file: Some(env.get("VERDICT_INSTANCE_FILE").map_or_else(
                || {
                    PathBuf::from(env.string("VERDICT_DATA_DIR", "./data"))
                        .join(format!("{connection_name}.instance"))
                },
                PathBuf::from,
            )),
        })
    }

    /// The server URLs in `url`, in order.
    pub fn seeds(&self) -> Vec<&str> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|seed| !seed.is_empty())
            .collect()
    }

    /// The user and password in the first seed URL, if any.
    pub fn credentials(&self) -> Option<(String, String)> {
        let seed = self.seeds().into_iter().next()?;
        let addr: async_nats::ServerAddr = seed.parse().ok()?;
        Some((addr.username()?.to_owned(), addr.password()?.to_owned()))
    }

    /// `url` without passwords, for logs and errors.
    pub fn redacted_url(&self) -> String {
        self.seeds()
            .into_iter()
            .map(
                |seed| match (seed.split_once("://"), seed.rsplit_once('@')) {
                    (Some((scheme, rest)), Some((_, host))) if rest.contains('@') => {
                        let user = rest.split([':', '@']).next().unwrap_or_default();
                        format!("{scheme}://{user}:***@{host}")
                    }
                    _ => seed.to_owned(),
                },
            )
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn new(url: impl Into<String>, connection_name: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            connection_name: connection_name.into(),
            connect_deadline: Duration::from_secs(30),
            request_timeout: Duration::from_secs(5),
            retry_budget: Duration::from_secs(5),
            instance_file: None,
        }
    }
}

/// Pauses between attempts at the first connection.
const CONNECT_PAUSES: Pauses = Pauses {
    first: Duration::from_millis(50),
    max: Duration::from_secs(2),
};

/// Connects to NATS, retrying with backoff until `connect_deadline`. After the first
/// connection, the client reconnects on its own for as long as the process lives.
pub async fn connect(settings: &BusSettings) -> Result<Client, BusError> {
    let started = Instant::now();
    let mut attempts = 0;
    let attempt = || {
        attempts += 1;
        let name = settings.connection_name.clone();
        let mut options = ConnectOptions::new();
        // async-nats ignores credentials in server URLs; the first seed's are the
        // process's NATS user (every seed of a cluster takes the same user).
        // Each user reads replies only under its own inbox prefix (bus_access).
        if let Some((user, password)) = settings.credentials() {
            options = options
                .custom_inbox_prefix(verdict_contracts::bus_access::inbox_prefix(&user))
                .user_and_password(user, password);
        }
        options
            .name(&settings.connection_name)
            .connection_timeout(Duration::from_secs(2))
            .max_reconnects(None)
            .event_callback(move |event| {
                let name = name.clone();
                async move { log_event(&name, event) }
            })
            .connect(settings.seeds())
    };
    retry_within(
        settings.connect_deadline,
        CONNECT_PAUSES,
        attempt,
        |_| true,
        |err, _| tracing::warn!(url = %settings.redacted_url(), error = %err, "NATS not reachable yet, retrying"),
    )
    .await
    .map_err(|err| BusError::Connect {
        url: settings.redacted_url(),
        attempts,
        waited: started.elapsed(),
        reason: err.into(),
    })
}

fn log_event(connection: &str, event: Event) {
    match event {
        Event::Connected => tracing::info!(connection, "NATS connected"),
        Event::Disconnected => tracing::warn!(connection, "NATS disconnected"),
        Event::LameDuckMode => tracing::warn!(connection, "NATS server entering lame duck mode"),
        // A permissions violation: something this process does is not in its NATS
        // user's permissions (bus_access), which is a bug to see at once.
        Event::ServerError(error) => tracing::error!(connection, %error, "NATS server error"),
        other => tracing::debug!(connection, event = %other, "NATS event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comma_separated_url_gives_every_seed() {
        let settings = BusSettings::new("nats://a:4222, nats://b:4222,nats://c:4222", "t");
        assert_eq!(
            settings.seeds(),
            ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
        );
    }

    #[test]
    fn the_user_and_password_come_from_the_first_seed() {
        let settings = BusSettings::new("nats://runs:s3cret@a:4222,nats://runs:s3cret@b:4222", "t");
        assert_eq!(
            settings.credentials(),
            Some(("runs".to_owned(), "s3cret".to_owned()))
        );
        assert_eq!(BusSettings::new("nats://a:4222", "t").credentials(), None);
    }

    #[test]
    fn the_url_with_its_password_may_come_from_a_file() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "nats://runs:s3cret@a:4222\n").unwrap();
        let env = Env::from_pairs([("NATS_URL_FILE", file.path().to_str().unwrap())]);
        let settings = BusSettings::from_env(&env, "t").unwrap();
        assert_eq!(
            settings.credentials(),
            Some(("runs".to_owned(), "s3cret".to_owned()))
        );
    }

    #[test]
    fn the_instance_file_is_named_after_the_connection_in_the_data_dir_unless_set() {
        let env = Env::from_pairs([("VERDICT_DATA_DIR", "/var/lib/verdict")]);
        let settings = BusSettings::from_env(&env, "verdict-runs").unwrap();
        assert_eq!(
            settings.instance_file.unwrap(),
            PathBuf::from("/var/lib/verdict/verdict-runs.instance")
        );
        let env = env.with([("VERDICT_INSTANCE_FILE", "/run/runs.id")]);
        let settings = BusSettings::from_env(&env, "verdict-runs").unwrap();
        assert_eq!(
            settings.instance_file.unwrap(),
            PathBuf::from("/run/runs.id")
        );
    }

    #[test]
    fn passwords_never_reach_logs() {
        let settings = BusSettings::new("nats://runs:s3cret@a:4222,nats://b:4222", "t");
        assert_eq!(
            settings.redacted_url(),
            "nats://runs:***@a:4222,nats://b:4222"
        );
    }
}
