use std::net::SocketAddr;
use std::time::Duration;

use verdict_bus::BusSettings;
use verdict_settings::{Env, SettingError};

/// Everything the gateway is configured with, read once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `VERDICT_LISTEN`, default `127.0.0.1:3003`.
    pub listen: SocketAddr,
    pub bus: BusSettings,
    /// `VERDICT_BODY_LIMIT` in bytes, default 1 MiB: the largest request body a route
    /// accepts unless it sets its own limit.
    pub body_limit: usize,
    /// `VERDICT_READY_TIMEOUT`, default 1s: how long `/readyz` waits for each service.
    pub ready_timeout: Duration,
    /// `VERDICT_STREAM_REPLICAS`, default 1: JetStream replicas of the streams the
    /// gateway creates (3 on a NATS cluster).
    pub stream_replicas: usize,
    /// `VERDICT_SHUTDOWN_GRACE`, default 10s: how long in-flight requests may take to
    /// finish after a stop signal.
    pub shutdown_grace: Duration,
}

impl Settings {
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:3003";

    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            listen: env.parse(
                "VERDICT_LISTEN",
                Self::DEFAULT_LISTEN.parse().expect("valid default"),
            )?,
            bus: BusSettings::from_env(env, "verdict-gateway")?,
            body_limit: env.parse("VERDICT_BODY_LIMIT", 1 << 20)?,
            ready_timeout: env.duration("VERDICT_READY_TIMEOUT", Duration::from_secs(1))?,
            stream_replicas: env.parse("VERDICT_STREAM_REPLICAS", 1)?,
            shutdown_grace: env.duration("VERDICT_SHUTDOWN_GRACE", Duration::from_secs(10))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_port_3003() {
        let settings = Settings::from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:3003".parse().unwrap());
        assert_eq!(settings.body_limit, 1 << 20);
    }

    #[test]
    fn a_malformed_listen_address_names_the_variable() {
        let env = Env::from_pairs([("VERDICT_LISTEN", "everywhere")]);
        assert_eq!(Settings::from_env(&env).unwrap_err().name, "VERDICT_LISTEN");
    }
}
