//! The hub: one NATS subscription per watched channel, however many sockets watch it.
//! Each frame arrives as the bytes realtime serialized once; every viewer gets a
//! reference-counted clone of them through its own bounded queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{mpsc, Mutex, Notify};
use tokio_util::sync::CancellationToken;
use verdict_bus::{Client, Subscriber};
use verdict_contracts::live::{self, Channel};

use super::encoding::{deflate, Encoding};

/// A frame on its way to one socket.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub channel: Arc<Channel>,
    pub seq: u64,
    /// The frame's JSON, checked to be UTF-8 (text messages must be).
    pub frame: Bytes,
    /// The frame compressed, when a viewer of the channel asked for `deflate`.
    pub deflated: Option<Bytes>,
}

/// Set when a viewer's queue overflowed or its channel had a gap; the socket then drops
/// its backlog and tells the client to resync.
#[derive(Default)]
pub struct Lag {
    raised: AtomicBool,
    notify: Notify,
}

impl Lag {
    fn raise(&self) {
        if !self.raised.swap(true, Ordering::AcqRel) {
            self.notify.notify_one();
        }
    }

    /// Waits until raised, then lowers it.
    pub async fn wait(&self) {
        loop {
            if self.raised.swap(false, Ordering::AcqRel) {
                return;
            }
            self.notify.notified().await;
        }
    }
}

/// One socket as the hub sees it.
#[derive(Clone)]
pub struct Viewer {
    pub id: u64,
    pub queue: mpsc::Sender<Outbound>,
    pub lag: Arc<Lag>,
    pub encoding: Encoding,
}

struct Feed {
    channel: Arc<Channel>,
    viewers: RwLock<Vec<Viewer>>,
    stop: CancellationToken,
}

pub struct Hub {
    client: Client,
    feeds: Mutex<HashMap<Channel, Arc<Feed>>>,
}

impl Hub {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            feeds: Mutex::new(HashMap::new()),
        }
    }

    /// Starts delivering the channel's frames to `viewer`. When this returns, the
    /// subscription is registered with the server: nothing published later is missed.
    pub async fn join(&self, channel: &Channel, viewer: Viewer) -> Result<(), String> {
        let mut feeds = self.feeds.lock().await;
        if let Some(feed) = feeds.get(channel) {
            write(&feed.viewers).push(viewer);
            return Ok(());
        }
        let subscription = self
            .client
            .subscribe(channel.view_subject())
            .await
            .map_err(|err| err.to_string())?;
        self.client.flush().await.map_err(|err| err.to_string())?;
        let feed = Arc::new(Feed {
            channel: Arc::new(channel.clone()),
            viewers: RwLock::new(vec![viewer]),
            stop: CancellationToken::new(),
        });
        tokio::spawn(fan_out(feed.clone(), subscription));
        feeds.insert(channel.clone(), feed);
        metrics::gauge!(crate::metrics::LIVE_CHANNELS).increment(1.0);
        Ok(())
    }

    /// Stops delivering the channel to the viewer; the last viewer out ends the NATS
    /// subscription.
    pub async fn leave(&self, channel: &Channel, viewer_id: u64) {
        let mut feeds = self.feeds.lock().await;
        let Some(feed) = feeds.get(channel) else {
            return;
        };
        let empty = {
            let mut viewers = write(&feed.viewers);
            viewers.retain(|viewer| viewer.id != viewer_id);
            viewers.is_empty()
        };
        if empty {
            feed.stop.cancel();
            feeds.remove(channel);
            metrics::gauge!(crate::metrics::LIVE_CHANNELS).decrement(1.0);
        }
    }
}

async fn fan_out(feed: Arc<Feed>, mut subscription: Subscriber) {
    let mut last_seq = 0;
    loop {
        let message = tokio::select! {
            () = feed.stop.cancelled() => break,
            message = subscription.next() => match message {
                Some(message) => message,
                None => break,
            },
        };
        let span = tracing::info_span!("live.fan_out", channel = %feed.channel);
        verdict_bus::trace::continue_from(&span, message.headers.as_ref());
        let _in_span = span.enter();
        let seq = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(live::SEQ_HEADER))
            .and_then(|value| value.as_str().parse::<u64>().ok());
        let frame = message.payload;
        let (Some(seq), Ok(_)) = (seq, std::str::from_utf8(&frame)) else {
            tracing::warn!(channel = %feed.channel, "ignoring a malformed live frame");
            continue;
        };
        if seq <= last_seq {
            continue;
        }
        let viewers = read(&feed.viewers);
        if last_seq != 0 && seq != last_seq + 1 {
            // A frame never reached this gateway: every viewer resyncs rather than
            // seeing a gap.
            tracing::warn!(channel = %feed.channel, last_seq, seq, "gap in a live channel");
            viewers.iter().for_each(|viewer| viewer.lag.raise());
        }
        last_seq = seq;
        let deflated = viewers
            .iter()
            .any(|viewer| viewer.encoding == Encoding::Deflate)
            .then(|| deflate(&frame));
        let outbound = Outbound {
            channel: feed.channel.clone(),
            seq,
            frame,
            deflated,
        };
        for viewer in viewers.iter() {
            match viewer.queue.try_send(outbound.clone()) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                Err(mpsc::error::TrySendError::Full(_)) => viewer.lag.raise(),
            }
        }
    }
    let _ = subscription.unsubscribe().await;
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
