use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use verdict_bus::BusSettings;

use crate::client_ip::TrustedProxies;
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
    /// `VERDICT_RESULTS_BODY_LIMIT` in bytes, default 32 MiB: the largest result batch.
    pub results_body_limit: usize,
    /// `VERDICT_REPORT_LIMIT` in bytes, default 256 MiB: the largest imported report.
    pub report_limit: usize,
    /// `VERDICT_READY_TIMEOUT`, default 1s: how long `/readyz` waits for JetStream, and
    /// `/api/v1/status` for the instances on the bus to answer.
    pub ready_timeout: Duration,
    /// `VERDICT_STREAM_REPLICAS`, default 1: JetStream replicas of the streams the
    /// gateway creates (3 on a NATS cluster).
    pub stream_replicas: usize,
    /// `VERDICT_SHUTDOWN_GRACE`, default 10s: how long in-flight requests may take to
    /// finish after a stop signal.
    pub shutdown_grace: Duration,
    /// `VERDICT_JWT_ISSUER` and `VERDICT_JWT_AUDIENCE`: what access tokens must say; the
    /// same variables the auth service signs with.
    pub issuer: String,
    pub audience: String,
    pub limits: RateLimits,
    /// `VERDICT_CORS_ORIGINS`: comma-separated origins allowed to call the API from a
    /// browser; none by default.
    pub cors_origins: Vec<String>,
    /// `VERDICT_PUBLIC_URL`: the origin clients reach the API at (e.g.
    /// `https://verdict.example.com`), used to make upload and download URLs absolute;
    /// by default the request's `Host`.
    pub public_url: Option<String>,
    pub live: LiveSettings,
    /// `VERDICT_TRUSTED_PROXIES`: load balancers whose `X-Forwarded-For` names the client
    /// (for rate limits per client address).
    pub trusted_proxies: TrustedProxies,
    pub connections: ConnectionSettings,
}

/// Limits on HTTP connections: against clients that hold connections open without
/// finishing a request (slowloris), and against one client taking every socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// `VERDICT_HEADER_READ_TIMEOUT`, default 10s: time a connection has to send a
    /// complete request head, from its opening or from its previous response (so it
    /// also closes keep-alive connections idle for that long).
    pub header_read_timeout: Duration,
    /// `VERDICT_MAX_CONNECTIONS`, default 20000: open connections (live sockets
    /// included); beyond, new ones get a 503 and are closed.
    pub max_connections: usize,
    /// `VERDICT_MAX_CONNECTIONS_PER_IP`, default 2000: open connections from one peer
    /// address; connections from a trusted proxy count against the total only.
    pub max_connections_per_ip: usize,
}

impl ConnectionSettings {
    fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            header_read_timeout: env
                .duration("VERDICT_HEADER_READ_TIMEOUT", Duration::from_secs(10))?,
            max_connections: env.parse("VERDICT_MAX_CONNECTIONS", 20_000)?,
            max_connections_per_ip: env.parse("VERDICT_MAX_CONNECTIONS_PER_IP", 2_000)?,
        })
    }
}

/// Limits and timings of the live WebSocket (`GET /api/v1/live`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveSettings {
    /// `VERDICT_LIVE_SOCKETS_PER_PRINCIPAL`, default 100.
    pub sockets_per_principal: u32,
    /// `VERDICT_LIVE_SOCKETS_PER_IP`, default 1000.
    pub sockets_per_ip: u32,
    /// `VERDICT_LIVE_SUBSCRIPTIONS`, default 64: channels one socket may watch.
    pub subscriptions_per_socket: usize,
    /// `VERDICT_LIVE_SUBSCRIBE_RATE`, default `20/s`: subscribe messages per socket.
    pub subscribe_rate: Budget,
    /// `VERDICT_LIVE_MESSAGE_LIMIT`, default 16384: the largest message a client sends.
    pub message_limit: usize,
    /// `VERDICT_LIVE_QUEUE`, default 256: frames waiting for one slow socket before it
    /// is told `lagged`.
    pub queue: usize,
    /// `VERDICT_LIVE_HEARTBEAT`, default 30s: ping interval; a socket silent for two
    /// intervals is closed, and the token is checked again at each.
    pub heartbeat: Duration,
    /// `VERDICT_LIVE_AUTH_TIMEOUT`, default 10s: time to send the `auth` message.
    pub auth_timeout: Duration,
    /// `VERDICT_LIVE_IDLE_TIMEOUT`, default 5m: a socket watching nothing is closed.
    pub idle_timeout: Duration,
    /// `VERDICT_LIVE_WRITE_TIMEOUT`, default 10s: a write that takes longer closes the
    /// socket (a client that stopped reading).
    pub write_timeout: Duration,
}

impl LiveSettings {
    fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            sockets_per_principal: env.parse("VERDICT_LIVE_SOCKETS_PER_PRINCIPAL", 100)?,
            sockets_per_ip: env.parse("VERDICT_LIVE_SOCKETS_PER_IP", 1000)?,
            subscriptions_per_socket: env.parse("VERDICT_LIVE_SUBSCRIPTIONS", 64)?,
            subscribe_rate: env.parse("VERDICT_LIVE_SUBSCRIBE_RATE", Budget::per_second(20))?,
            message_limit: env.parse("VERDICT_LIVE_MESSAGE_LIMIT", 16 * 1024)?,
            queue: env.parse("VERDICT_LIVE_QUEUE", 256)?,
            heartbeat: env.duration("VERDICT_LIVE_HEARTBEAT", Duration::from_secs(30))?,
            auth_timeout: env.duration("VERDICT_LIVE_AUTH_TIMEOUT", Duration::from_secs(10))?,
            idle_timeout: env.duration("VERDICT_LIVE_IDLE_TIMEOUT", Duration::from_secs(300))?,
            write_timeout: env.duration("VERDICT_LIVE_WRITE_TIMEOUT", Duration::from_secs(10))?,
        })
    }
}

/// Request budgets, each applied per client IP and per principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `VERDICT_RATE_LOGIN`, default `10/m`: login attempts.
    pub login: Budget,
    /// `VERDICT_RATE_READ`, default `100/s`: GET requests.
    pub read: Budget,
    /// `VERDICT_RATE_WRITE`, default `200/s`: other requests.
    pub write: Budget,
}

/// `count` requests per `period`, all of which may come at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub count: u32,
    pub period: Duration,
}

impl Budget {
    pub const fn per_second(count: u32) -> Self {
        Self {
            count,
            period: Duration::from_secs(1),
        }
    }

    pub const fn per_minute(count: u32) -> Self {
        Self {
            count,
            period: Duration::from_secs(60),
        }
    }
}

impl std::str::FromStr for Budget {
    type Err = String;

    /// `N/s`, `N/m` or `N/h`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || "expected N/s, N/m or N/h with N at least 1".to_owned();
        let (count, unit) = text.split_once('/').ok_or_else(usage)?;
        let count: u32 = count.trim().parse().map_err(|_| usage())?;
        let period = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(usage()),
        };
        if count == 0 {
            return Err(usage());
        }
        Ok(Budget { count, period })
    }
}

impl Settings {
    pub const DEFAULT_LISTEN: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 3003));

    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            listen: env.parse("VERDICT_LISTEN", Self::DEFAULT_LISTEN)?,
            bus: BusSettings::from_env(env, "verdict-gateway")?,
            body_limit: env.parse("VERDICT_BODY_LIMIT", 1 << 20)?,
            results_body_limit: env.parse("VERDICT_RESULTS_BODY_LIMIT", 32 << 20)?,
            report_limit: env.parse("VERDICT_REPORT_LIMIT", 256 << 20)?,
            ready_timeout: env.duration("VERDICT_READY_TIMEOUT", Duration::from_secs(1))?,
            stream_replicas: env.parse("VERDICT_STREAM_REPLICAS", 1)?,
            shutdown_grace: env.duration("VERDICT_SHUTDOWN_GRACE", Duration::from_secs(10))?,
            issuer: env.string("VERDICT_JWT_ISSUER", "verdict"),
            audience: env.string("VERDICT_JWT_AUDIENCE", "verdict-api"),
            limits: RateLimits {
                login: env.parse("VERDICT_RATE_LOGIN", Budget::per_minute(10))?,
                read: env.parse("VERDICT_RATE_READ", Budget::per_second(100))?,
                write: env.parse("VERDICT_RATE_WRITE", Budget::per_second(200))?,
            },
            cors_origins: env
                .get("VERDICT_CORS_ORIGINS")
                .map(|origins| {
                    origins
                        .split(',')
                        .map(|o| o.trim().to_owned())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            public_url: env.get("VERDICT_PUBLIC_URL"),
            live: LiveSettings::from_env(env)?,
            trusted_proxies: env.parse("VERDICT_TRUSTED_PROXIES", TrustedProxies::default())?,
            connections: ConnectionSettings::from_env(env)?,
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
    fn budgets_read_as_count_per_unit() {
        let budget: Budget = "30/m".parse().unwrap();
        assert_eq!(
            budget,
            Budget {
                count: 30,
                period: Duration::from_secs(60)
            }
        );
        for bad in ["30", "0/s", "x/s", "30/d"] {
            assert!(bad.parse::<Budget>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cors_is_closed_unless_origins_are_listed() {
        let settings = Settings::from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
        assert!(settings.cors_origins.is_empty());
        let env = Env::from_pairs([(
            "VERDICT_CORS_ORIGINS",
            "https://a.example, https://b.example",
        )]);
        assert_eq!(Settings::from_env(&env).unwrap().cors_origins.len(), 2);
    }

    #[test]
    fn a_malformed_listen_address_names_the_variable() {
        let env = Env::from_pairs([("VERDICT_LISTEN", "everywhere")]);
        assert_eq!(Settings::from_env(&env).unwrap_err().name, "VERDICT_LISTEN");
    }
}
