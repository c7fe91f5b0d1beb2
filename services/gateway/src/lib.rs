//! The edge gateway: the HTTP API under `/api/v1`, probes, and (later) authentication,
//! rate limits and WebSocket fan-out. Stateless: run as many as the load needs.

mod auth;
mod client_ip;
mod config;
mod content_encoding;
mod extract;
mod ingest;
mod listener;
mod live;
mod metrics;
mod middleware;
mod problem;
mod ratelimit;
mod report_import;
mod routes;
mod state;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use verdict_bus::presence::Presence;
use verdict_bus::{Bus, BusError};
use verdict_contracts::{streams, ProcessKind};

pub use client_ip::TrustedProxies;
pub use config::{Budget, ConnectionSettings, RateLimits, Settings};
pub use middleware::{REQUEST_ID, TRACE_RESPONSE};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why the gateway stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}

/// A gateway bound to its address, not yet serving: lets callers learn the port
/// (`VERDICT_LISTEN` may say port 0) before requests arrive.
pub struct Gateway {
    listener: TcpListener,
    /// The address actually bound (the port is chosen by the OS when configured as 0).
    addr: SocketAddr,
    state: state::AppState,
    /// Stops the background tasks (revocation watch, key changes, limiter upkeep).
    background: CancellationToken,
    /// This gateway as an instance on the bus (status reports list it).
    presence: Presence,
}

impl Gateway {
    /// Connects to NATS, makes sure the JetStream streams exist, and binds the listener.
    pub async fn bind(settings: Settings) -> Result<Self, Error> {
        metrics::describe();
        let client = verdict_bus::connect(&settings.bus).await?;
        // The streams' owners (runs, realtime) set them up as their settings say; the
        // gateway only makes sure they exist before it accepts anything for them.
        verdict_bus::streams::ensure_exists(&client, &streams::ALL, settings.stream_replicas)
            .await?;
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| Error::Listen {
                    addr: settings.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| Error::Listen {
            addr: settings.listen,
            source,
        })?;
        let presence = Presence::register(
            &client,
            ProcessKind::Gateway,
            VERSION,
            settings.bus.instance_file.as_deref(),
        )
        .await?;
        let bus = Bus::new(client, &settings.bus);
        let background = CancellationToken::new();
        let auth = auth::Authenticator::start(
            bus.clone(),
            &settings.issuer,
            &settings.audience,
            settings.stream_replicas,
            background.clone(),
        )
        .await?;
        let limiter = Arc::new(ratelimit::Limiter::new(&settings.limits));
        let settings_live = settings.live;
        tokio::spawn(forget_idle_clients(limiter.clone(), background.clone()));
        let web = verdict_web::Web::new(
            bus.clone(),
            Arc::new(web::GatewayEdge {
                auth: auth.clone(),
                trusted_proxies: settings.trusted_proxies.clone(),
            }),
            &verdict_web::WebSettings {
                public_url: settings.public_url.clone(),
            },
        );
        let state = state::AppState {
            bus: bus.clone(),
            settings: Arc::new(settings),
            openapi: routes::openapi::render(),
            auth: auth.clone(),
            limiter,
            // No overall timeout: an upload of gigabytes takes as long as it takes.
            blob_client: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .build()
                .map_err(Error::HttpClient)?,
            ingest: Arc::new(ingest::Ingest::new(bus.clone())),
            live: Arc::new(live::Live::new(settings_live, bus.clone(), auth.clone())),
            web,
            jetstream_seen: Arc::default(),
        };
        Ok(Self {
            listener,
            addr,
            state,
            background,
            presence,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` fires; then stops accepting, lets in-flight requests
    /// finish within the grace period, and drains the NATS connection.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), Error> {
        let addr = self.local_addr();
        let grace = self.state.settings.shutdown_grace;
        let client = self.state.bus.client().clone();
        // Upgraded sockets are not part of the HTTP server's graceful shutdown: they get
        // their goodbye (1001) as soon as the stop signal fires.
        let live = self.state.live.clone();
        let stop = shutdown.clone();
        let goodbyes = tokio::spawn(async move {
            stop.cancelled().await;
            live.close_all().await;
        });
        let connections = self.state.settings.connections;
        let trusted_proxies = self.state.settings.trusted_proxies.clone();
        let app = routes::router(self.state);
        tracing::info!(%addr, "gateway listening");
        let server = listener::serve(
            self.listener,
            app,
            connections,
            trusted_proxies,
            shutdown.clone(),
        );
        let forced = async {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            () = server => {}
            () = forced => tracing::warn!(?grace, "requests still running after the grace period; closing them"),
        }
        if tokio::time::timeout(grace, goodbyes).await.is_err() {
            tracing::warn!(?grace, "live sockets still open after the grace period");
        }
        self.background.cancel();
        self.presence.leave().await;
        client
            .drain()
            .await
            .map_err(|err| Error::Bus(BusError::Drain(err)))?;
        Ok(())
    }
}

async fn forget_idle_clients(limiter: Arc<ratelimit::Limiter>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => limiter.forget_idle(),
        }
    }
}

/// Binds and serves until `shutdown`.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), Error> {
    Gateway::bind(settings).await?.serve(shutdown).await
}
