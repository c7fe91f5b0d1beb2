//! Live view over WebSocket (`GET /api/v1/live`): the opening handshake, the hub that
//! fans frames out, the session each socket runs, how frames go on the wire, and the
//! per-principal and per-IP socket limits.

mod encoding;
mod handshake;
mod hub;
mod session;
mod wire;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use verdict_bus::Bus;
use verdict_contracts::auth::Principal;

use crate::auth::Authenticator;
use crate::config::LiveSettings;

pub use encoding::Encoding;
pub use handshake::Handshake;
pub use session::{Session, Token};

/// Everything the live sockets of one gateway share.
pub struct Live {
    pub settings: LiveSettings,
    pub bus: Bus,
    pub auth: Arc<Authenticator>,
    hub: hub::Hub,
    next_viewer: AtomicU64,
    per_ip: Counter<IpAddr>,
    per_principal: Counter<String>,
    /// Fires when the gateway stops: every socket says goodbye (1001).
    shutdown: CancellationToken,
    sockets: TaskTracker,
}

impl Live {
    pub fn new(settings: LiveSettings, bus: Bus, auth: Arc<Authenticator>) -> Self {
        Self {
            settings,
            hub: hub::Hub::new(bus.client().clone()),
            bus,
            auth,
            next_viewer: AtomicU64::new(1),
            per_ip: Counter::default(),
            per_principal: Counter::default(),
            shutdown: CancellationToken::new(),
            sockets: TaskTracker::new(),
        }
    }

    /// Claims one of the IP's sockets; `None` when it has them all.
    pub fn claim_ip(self: &Arc<Self>, ip: IpAddr) -> Option<Slot<IpAddr>> {
        Slot::claim(self, |live| &live.per_ip, ip, self.settings.sockets_per_ip)
    }

    /// Claims one of the principal's sockets; `None` when it has them all.
    pub fn claim_principal(self: &Arc<Self>, principal: &Principal) -> Option<Slot<String>> {
        let key = match principal {
            Principal::User { user_id, .. } => format!("user:{user_id}"),
            Principal::ApiToken { token_id, .. } => format!("token:{token_id}"),
        };
        Slot::claim(
            self,
            |live| &live.per_principal,
            key,
            self.settings.sockets_per_principal,
        )
    }

    /// A socket's session, tracked so that shutdown can wait for its goodbye.
    pub fn track(&self, session: Session) -> impl std::future::Future<Output = ()> + use<> {
        self.sockets.track_future(session.run())
    }

    /// Tells every socket to close (1001) and waits until they have.
    pub async fn close_all(&self) {
        self.shutdown.cancel();
        self.sockets.close();
        self.sockets.wait().await;
    }

    fn viewer_id(&self) -> u64 {
        self.next_viewer.fetch_add(1, Ordering::Relaxed)
    }
}

/// Open sockets per key.
struct Counter<K>(Mutex<HashMap<K, u32>>);

impl<K> Default for Counter<K> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

/// A claimed socket slot; given back when dropped.
pub struct Slot<K: std::hash::Hash + Eq + Clone> {
    live: Arc<Live>,
    counter: fn(&Live) -> &Counter<K>,
    key: K,
}

impl<K: std::hash::Hash + Eq + Clone> Slot<K> {
    fn claim(
        live: &Arc<Live>,
        counter: fn(&Live) -> &Counter<K>,
        key: K,
        max: u32,
    ) -> Option<Self> {
        let mut counts = counter(live).0.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(key.clone()).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Self {
            live: live.clone(),
            counter,
            key,
        })
    }
}

impl<K: std::hash::Hash + Eq + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut counts = (self.counter)(&self.live)
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}
