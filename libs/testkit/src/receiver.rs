//! An HTTP receiver on loopback for the deliveries of the notify service (webhooks,
//! commit status APIs): it records every request and answers with the statuses a test
//! scripts, then 200; redirects (3xx) name the location the test gave.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<ReceivedRequest>>,
    script: Mutex<VecDeque<u16>>,
    location: Mutex<Option<String>>,
    arrived: Notify,
}

/// The receiver; it stops when dropped.
pub struct Receiver {
    address: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the receiver binds");
        let address = listener.local_addr().expect("its address");
        let shared = Arc::new(Shared::default());
        let stop = CancellationToken::new();
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(shared.clone());
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await;
        });
        Self {
            address,
            shared,
            stop,
        }
    }

    /// `path` on the receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The next requests are answered with these statuses, in order; later ones 200.
    pub fn answer_with(&self, statuses: &[u16]) {
        let mut script = self.shared.script.lock().expect("script");
        script.clear();
        script.extend(statuses);
    }

    /// Redirects answer with this `Location`.
    pub fn redirect_to(&self, location: &str) {
        *self.shared.location.lock().expect("location") = Some(location.to_owned());
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.shared.received.lock().expect("received").clone()
    }

    /// Waits until `count` requests arrived; panics after `within`.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<ReceivedRequest> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.shared.arrived.notified();
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "{} of {count} requests arrived within {within:?}",
                    self.received().len()
                );
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let status = shared
        .script
        .lock()
        .expect("script")
        .pop_front()
        .unwrap_or(200);
    shared
        .received
        .lock()
        .expect("received")
        .push(ReceivedRequest {
            method,
            path: uri.path().to_owned(),
            headers,
            body,
            at: Instant::now(),
        });
    shared.arrived.notify_waiters();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let location = shared.location.lock().expect("location").clone();
    match location {
        Some(location) if status.is_redirection() => {
            (status, [(header::LOCATION, location)]).into_response()
        }
        _ => status.into_response(),
    }
}
