//! Accepting HTTP connections: hyper's HTTP/1 server with a header read timeout,
//! upgrades (the live WebSocket) and graceful shutdown, behind limits on open
//! connections in total and per client address. `verdict up` has no proxy in front, so
//! these are what stand between a slow or greedy client and the process's sockets.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::client_ip::TrustedProxies;
use crate::config::ConnectionSettings;
use crate::problem::Problem;

/// Serves `router` on `listener` until `shutdown` fires; then stops accepting and
/// returns once every connection has finished its request in flight and closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ConnectionSettings,
    trusted_proxies: TrustedProxies,
    shutdown: CancellationToken,
) {
    let admission = Arc::new(Admission {
        settings,
        trusted_proxies,
        open: Mutex::default(),
    });
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    pause_after_accept_error(err).await;
                    continue;
                }
            },
        };
        match Admission::admit(&admission, peer.ip()) {
            Ok(slot) => {
                let stream = Counted {
                    stream,
                    _slot: slot,
                };
                let connection =
                    serve_connection(http.clone(), stream, peer, router.clone(), shutdown.clone());
                connections.spawn(connection);
            }
            Err(refusal) => refuse(&stream, refusal),
        }
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn serve_connection(
    http: http1::Builder,
    stream: Counted,
    peer: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
) {
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request.map(Body::new))
    });
    let connection = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = served {
        // A client gone, or too slow with its headers: nothing to answer.
        tracing::debug!(%peer, error = %err, "connection ended with an error");
    }
}

/// Accepting fails when the process is out of file descriptors (or a client gave up
/// during the handshake); waiting a moment lets connections close instead of spinning.
async fn pause_after_accept_error(err: io::Error) {
    if matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "cannot accept connections");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Why a connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Full,
    FullForAddress,
}

/// Tells a refused client why, if its socket takes the few bytes at once, and closes
/// the connection: a refusal never waits on the client.
fn refuse(stream: &TcpStream, refusal: Refusal) {
    let detail = match refusal {
        Refusal::Full => "the gateway has too many open connections; retry shortly",
        Refusal::FullForAddress => "too many open connections from this address",
    };
    tracing::debug!(?refusal, "connection refused");
    let body = serde_json::to_vec(&Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail))
        .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {}\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n",
        crate::problem::CONTENT_TYPE,
        body.len()
    );
    let _ = stream.try_write(&[head.as_bytes(), &body].concat());
}

/// Open connections, in total and per client address.
struct Admission {
    settings: ConnectionSettings,
    trusted_proxies: TrustedProxies,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl Admission {
    /// A slot for a connection from `peer`, held as long as the connection (an upgraded
    /// one included). A load balancer the gateway trusts speaks for many clients, so only
    /// the total bounds its connections.
    fn admit(this: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refusal> {
        let per_address = !this.trusted_proxies.trusts(peer);
        let mut open = this.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= this.settings.max_connections {
            return Err(Refusal::Full);
        }
        if per_address {
            let from_peer = open.by_address.entry(peer).or_default();
            if *from_peer >= this.settings.max_connections_per_ip {
                return Err(Refusal::FullForAddress);
            }
            *from_peer += 1;
        }
        open.total += 1;
        Ok(Slot {
            admission: this.clone(),
            peer: per_address.then_some(peer),
        })
    }
}

/// One admitted connection; dropping it frees its place.
struct Slot {
    admission: Arc<Admission>,
    /// The address it counts against, unless it came through a trusted proxy.
    peer: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        open.total -= 1;
        if let Some(peer) = self.peer {
            if let Some(count) = open.by_address.get_mut(&peer) {
                *count -= 1;
                if *count == 0 {
                    open.by_address.remove(&peer);
                }
            }
        }
    }
}

/// A connection's socket with its slot: the slot goes when the socket does, which for
/// an upgraded connection is long after hyper has handed it over.
struct Counted {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_connections: usize, max_connections_per_ip: usize) -> Arc<Admission> {
        Arc::new(Admission {
            settings: ConnectionSettings {
                header_read_timeout: Duration::from_secs(10),
                max_connections,
                max_connections_per_ip,
            },
            trusted_proxies: "10.0.0.1".parse().unwrap(),
            open: Mutex::default(),
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_at_its_limit_is_refused_while_others_are_admitted() {
        let admission = admission(10, 2);
        let _held = [
            Admission::admit(&admission, ip("192.0.2.1")).unwrap(),
            Admission::admit(&admission, ip("192.0.2.1")).unwrap(),
        ];
        assert_eq!(
            Admission::admit(&admission, ip("192.0.2.1")).err(),
            Some(Refusal::FullForAddress)
        );
        assert!(Admission::admit(&admission, ip("192.0.2.2")).is_ok());
    }

    #[test]
    fn a_closed_connection_frees_its_place() {
        let admission = admission(10, 1);
        let slot = Admission::admit(&admission, ip("192.0.2.1")).unwrap();
        drop(slot);
        assert!(Admission::admit(&admission, ip("192.0.2.1")).is_ok());
        assert!(admission.open.lock().unwrap().by_address.len() <= 1);
    }

    #[test]
    fn the_total_bounds_every_address_together() {
        let admission = admission(2, 2);
        let _held = [
            Admission::admit(&admission, ip("192.0.2.1")).unwrap(),
            Admission::admit(&admission, ip("192.0.2.2")).unwrap(),
        ];
        assert_eq!(
            Admission::admit(&admission, ip("192.0.2.3")).err(),
            Some(Refusal::Full)
        );
    }

    #[test]
    fn a_trusted_proxy_is_bound_by_the_total_only() {
        let admission = admission(3, 1);
        let _held = [
            Admission::admit(&admission, ip("10.0.0.1")).unwrap(),
            Admission::admit(&admission, ip("10.0.0.1")).unwrap(),
            Admission::admit(&admission, ip("10.0.0.1")).unwrap(),
        ];
        assert_eq!(
            Admission::admit(&admission, ip("10.0.0.1")).err(),
            Some(Refusal::Full)
        );
    }
}
