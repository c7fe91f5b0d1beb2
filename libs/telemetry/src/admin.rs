//! The admin listener: `GET /metrics` (Prometheus text) of every part running in this
//! process, on an address of its own (`VERDICT_ADMIN_LISTEN`, loopback by default), so
//! metrics are scraped from inside the deployment and never served on the public API.
//! It also keeps the registry's memory bounded (see [`run_upkeep`]).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics_registry::{install, prometheus_text, run_upkeep};

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// Pause between attempts to bind an address that is taken.
const BIND_RETRY: Duration = Duration::from_secs(2);

/// The content type of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// An admin listener bound to its address, not yet serving: lets callers learn the port
/// when the address says port 0.
pub struct AdminListener {
    listener: TcpListener,
    addr: SocketAddr,
}

impl AdminListener {
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        install();
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        Ok(Self { listener, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown`, running the registry's upkeep meanwhile.
    pub async fn serve(self, shutdown: CancellationToken) -> io::Result<()> {
        let (_, served) = tokio::join!(upkeep(shutdown.clone()), self.serve_http(shutdown));
        served
    }

    async fn serve_http(self, shutdown: CancellationToken) -> io::Result<()> {
        tracing::info!(addr = %self.addr, "admin listener serving /metrics");
        axum::serve(self.listener, router())
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    }
}

/// The admin listener of a process: binds `addr` and serves until `shutdown`. While the
/// address is taken (during an upgrade on one host the old instance holds it until it
/// stops) it logs why and tries again, so a process never fails for its metrics; the
/// registry's upkeep runs all along.
pub async fn run(addr: SocketAddr, shutdown: CancellationToken) {
    let (_, ()) = tokio::join!(upkeep(shutdown.clone()), async {
        let mut warned = false;
        let listener = loop {
            match AdminListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(err) => {
                    if !warned {
                        tracing::warn!(%addr, error = %err, "cannot listen on VERDICT_ADMIN_LISTEN; no metrics until it is free, trying again");
                        warned = true;
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(BIND_RETRY) => {}
                    }
                }
            }
        };
        if let Err(err) = listener.serve_http(shutdown).await {
            tracing::error!(%addr, error = %err, "the admin listener failed");
        }
    });
}

fn router() -> Router {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        prometheus_text(),
    )
}

async fn upkeep(shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(UPKEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => run_upkeep(),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// The answer to `GET /metrics` on `addr`, or the connection error.
    async fn get_metrics(addr: SocketAddr) -> io::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok(answer)
    }

    #[tokio::test]
    async fn a_taken_address_is_tried_again_until_it_is_free() {
        let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = holder.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let admin = tokio::spawn(run(addr, shutdown.clone()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!admin.is_finished(), "the process goes on without metrics");

        drop(holder);
        let deadline = tokio::time::Instant::now() + BIND_RETRY * 3;
        let answer = loop {
            match get_metrics(addr).await {
                Ok(answer) => break answer,
                Err(err) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "still not serving: {err}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains(METRICS_CONTENT_TYPE), "{answer}");

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), admin)
            .await
            .expect("the admin listener stops with the process")
            .unwrap();
    }
}
