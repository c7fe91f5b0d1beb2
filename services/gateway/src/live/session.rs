//! One socket's session: authentication, subscriptions, frame delivery through its
//! bounded queue, heartbeats, limits and goodbyes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use governor::DefaultDirectRateLimiter;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use verdict_bus::RequestError;
use verdict_contracts::auth::Principal;
use verdict_contracts::live::{self, Channel, ClientMessage, ServerMessage, Subscribe};
use verdict_contracts::ErrorCode;

use super::encoding::Encoding;
use super::handshake::Socket;
use super::hub::{Lag, Outbound, Viewer};
use super::wire::{self, WireMessage};
use super::{Live, Slot};
use crate::auth::AuthError;
use crate::ratelimit;

/// The bearer token a socket authenticated with, kept to check it again while the
/// socket lives. Never logged.
pub struct Token(String);

impl Token {
    pub fn new(token: String) -> Self {
        Self(token)
    }

    fn header(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

/// Most frames sent in one write.
const WRITE_BATCH: usize = 64;

/// Why a session ends, and what the client is told.
enum Close {
    /// The client went away or the connection broke: nothing to say.
    Gone,
    /// Closed with a code and reason, after an `error` frame when `error` is set.
    With {
        code: CloseCode,
        reason: &'static str,
        error: Option<(&'static str, String)>,
    },
}

impl Close {
    fn policy(code: &'static str, message: impl Into<String>) -> Self {
        Close::With {
            code: CloseCode::Policy,
            reason: code,
            error: Some((code, message.into())),
        }
    }
}

/// Who the socket acts for, once authenticated.
struct Identity {
    principal: Principal,
    token: Token,
    _slot: Slot<String>,
}

pub struct Session {
    live: Arc<Live>,
    socket: Socket,
    encoding: Encoding,
    identity: Option<Identity>,
    _ip: Slot<IpAddr>,
}

impl Session {
    /// A session for a socket from `ip` that sends in `encoding`; `authenticated` when
    /// the upgrade request carried a valid token, otherwise the first message must be
    /// `auth`.
    pub fn new(
        live: Arc<Live>,
        socket: Socket,
        encoding: Encoding,
        authenticated: Option<(Principal, Token, Slot<String>)>,
        ip: Slot<IpAddr>,
    ) -> Self {
        Self {
            live,
            socket,
            encoding,
            identity: authenticated.map(|(principal, token, slot)| Identity {
                principal,
                token,
                _slot: slot,
            }),
            _ip: ip,
        }
    }

    pub async fn run(mut self) {
        metrics::gauge!(crate::metrics::LIVE_SOCKETS).increment(1.0);
        let close = match self.authenticate().await {
            Ok(identity) => {
                Running::new(&self.live, identity, self.encoding)
                    .serve(&mut self.socket)
                    .await
            }
            Err(close) => close,
        };
        if let Close::With {
            code,
            reason,
            error,
        } = close
        {
            let timeout = self.live.settings.write_timeout;
            if let Some((code, message)) = error {
                let text = encode(&ServerMessage::Error {
                    code,
                    message: &message,
                });
                let error = self.encoding.message(text);
                let _ = send(&mut self.socket, error, timeout).await;
            }
            let goodbye = Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            }));
            let _ = send(&mut self.socket, goodbye, timeout).await;
        }
        metrics::gauge!(crate::metrics::LIVE_SOCKETS).decrement(1.0);
    }

    /// The identity from the upgrade request, or from the first message.
    async fn authenticate(&mut self) -> Result<Identity, Close> {
        if let Some(identity) = self.identity.take() {
            return Ok(identity);
        }
        let settings = self.live.settings;
        let first = tokio::select! {
            () = self.live.shutdown.cancelled() => return Err(going_away()),
            first = tokio::time::timeout(settings.auth_timeout, self.socket.next()) => first,
        };
        let token = match first {
            Err(_) => return Err(Close::policy("unauthorized", "send an auth message first")),
            Ok(None | Some(Err(_))) => return Err(Close::Gone),
            Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str(&text) {
                Ok(ClientMessage::Auth { token }) => Token::new(token),
                _ => {
                    return Err(Close::policy(
                        "unauthorized",
                        "the first message must be auth",
                    ))
                }
            },
            Ok(Some(Ok(_))) => {
                return Err(Close::policy(
                    "unauthorized",
                    "the first message must be auth",
                ))
            }
        };
        let principal = match self.live.auth.authenticate(Some(&token.header())).await {
            Ok(principal) => principal,
            Err(AuthError::Unavailable(_)) => {
                return Err(Close::With {
                    code: CloseCode::Again,
                    reason: "unavailable",
                    error: Some((
                        "unavailable",
                        "authentication is unavailable; retry shortly".into(),
                    )),
                })
            }
            Err(_) => {
                return Err(Close::policy(
                    "unauthorized",
                    "the token is invalid, expired or revoked",
                ))
            }
        };
        let slot = self.live.claim_principal(&principal).ok_or_else(|| {
            Close::policy(
                "too_many_sockets",
                "too many live sockets for this principal",
            )
        })?;
        Ok(Identity {
            principal,
            token,
            _slot: slot,
        })
    }
}

fn going_away() -> Close {
    Close::With {
        code: CloseCode::Away,
        reason: "gateway shutting down",
        error: None,
    }
}

/// An authenticated session's state.
struct Running<'a> {
    live: &'a Arc<Live>,
    identity: Identity,
    encoding: Encoding,
    viewer: Viewer,
    queue: mpsc::Receiver<Outbound>,
    lag: Arc<Lag>,
    /// Each watched channel and the last `seq` the client has of it.
    channels: HashMap<Channel, u64>,
    subscribe_budget: DefaultDirectRateLimiter,
}

impl<'a> Running<'a> {
    fn new(live: &'a Arc<Live>, identity: Identity, encoding: Encoding) -> Self {
        let (sender, queue) = mpsc::channel(live.settings.queue.max(1));
        let lag = Arc::new(Lag::default());
        Self {
            viewer: Viewer {
                id: live.viewer_id(),
                queue: sender,
                lag: lag.clone(),
                encoding,
            },
            live,
            identity,
            encoding,
            queue,
            lag,
            channels: HashMap::new(),
            subscribe_budget: ratelimit::single(live.settings.subscribe_rate),
        }
    }

    async fn serve(mut self, socket: &mut Socket) -> Close {
        let close = self.exchange(socket).await;
        for channel in self.channels.keys() {
            self.live.hub.leave(channel, self.viewer.id).await;
        }
        close
    }

    async fn exchange(&mut self, socket: &mut Socket) -> Close {
        let settings = self.live.settings;
        // Futures that wait on something shared by every socket (the shutdown token, the
        // revocation watch) are made once, not on each frame: registering a waiter takes
        // a lock all sockets share.
        let live = self.live.clone();
        let shutdown = live.shutdown.cancelled();
        tokio::pin!(shutdown);
        let mut revoked = Box::pin(futures::stream::unfold(
            live.auth.revocations(),
            |mut revocations| async move {
                revocations.changed().await.ok()?;
                Some(((), revocations))
            },
        ));
        let mut lagged = Box::pin(futures::stream::unfold(
            self.lag.clone(),
            |lag| async move {
                lag.wait().await;
                Some(((), lag))
            },
        ));
        let mut heartbeat = tokio::time::interval_at(
            tokio::time::Instant::now() + settings.heartbeat,
            settings.heartbeat,
        );
        let mut awaiting_pong = false;
        let mut idle_since = Instant::now();
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => return going_away(),
                Some(()) = lagged.next() => {
                    if let Err(close) = self.resync(socket).await {
                        return close;
                    }
                }
                Some(first) = self.queue.recv() => {
                    if let Err(close) = self.deliver(socket, first).await {
                        return close;
                    }
                }
                message = socket.next() => {
                    awaiting_pong = false;
                    let message = match message {
                        None => return Close::Gone,
                        Some(Err(err)) if too_large(&err) => {
                            return Close::With {
                                code: CloseCode::Size,
                                reason: "message too large",
                                error: Some((
                                    "message_too_large",
                                    format!("messages are limited to {} bytes", settings.message_limit),
                                )),
                            };
                        }
                        Some(Err(_)) => return Close::Gone,
                        Some(Ok(message)) => message,
                    };
                    if let Err(close) = self.receive(socket, message).await {
                        return close;
                    }
                    if self.channels.is_empty() {
                        idle_since = Instant::now();
                    }
                }
                changed = revoked.next() => {
                    if changed.is_none() {
                        return going_away();
                    }
                    if let Err(close) = self.check_token().await {
                        return close;
                    }
                }
                _ = heartbeat.tick() => {
                    if awaiting_pong {
                        return Close::Gone;
                    }
                    if let Err(close) = self.check_token().await {
                        return close;
                    }
                    if self.channels.is_empty() && idle_since.elapsed() >= settings.idle_timeout {
                        return Close::With { code: CloseCode::Normal, reason: "idle", error: None };
                    }
                    if send(socket, Message::Ping(Default::default()), settings.write_timeout).await.is_err() {
                        return Close::Gone;
                    }
                    awaiting_pong = true;
                }
            }
        }
    }

    /// Sends `first` and whatever else is queued, in one write.
    async fn deliver(&mut self, socket: &mut Socket, first: Outbound) -> Result<(), Close> {
        let mut batch = Vec::new();
        let mut gap = false;
        let mut next = Some(first);
        while let Some(outbound) = next.take() {
            if let Some(last) = self.channels.get_mut(&outbound.channel) {
                if outbound.seq == *last + 1 {
                    *last = outbound.seq;
                    batch.push(self.encoding.frame(outbound.frame, outbound.deflated));
                } else if outbound.seq > *last + 1 {
                    // A frame this socket never got: resync instead of showing a gap.
                    gap = true;
                    break;
                }
            }
            if batch.len() < WRITE_BATCH {
                next = self.queue.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let written = tokio::time::timeout(
                self.live.settings.write_timeout,
                write_frames(socket, &batch),
            )
            .await;
            if !matches!(written, Ok(Ok(()))) {
                return Err(Close::Gone);
            }
            metrics::counter!(crate::metrics::LIVE_FRAMES).increment(batch.len() as u64);
        }
        if gap {
            return self.resync(socket).await;
        }
        Ok(())
    }

    /// Drops the backlog and every subscription, and tells the client which channels
    /// to subscribe to again.
    async fn resync(&mut self, socket: &mut Socket) -> Result<(), Close> {
        metrics::counter!(crate::metrics::LIVE_LAGGED).increment(1);
        let channels: Vec<Channel> = self.channels.drain().map(|(channel, _)| channel).collect();
        for channel in &channels {
            self.live.hub.leave(channel, self.viewer.id).await;
        }
        while self.queue.try_recv().is_ok() {}
        for channel in &channels {
            self.reply(socket, &ServerMessage::Lagged { channel })
                .await?;
        }
        Ok(())
    }

    async fn receive(&mut self, socket: &mut Socket, message: Message) -> Result<(), Close> {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => return Err(Close::Gone),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Ok(()),
            Message::Binary(_) => {
                return self
                    .error(socket, "bad_request", "messages are JSON text".into())
                    .await
            }
        };
        let message = match serde_json::from_str::<ClientMessage>(&text) {
            Ok(message) => message,
            Err(err) => {
                return self
                    .error(socket, "bad_request", format!("invalid message: {err}"))
                    .await
            }
        };
        match message {
            ClientMessage::Ping => self.reply(socket, &ServerMessage::Pong).await,
            ClientMessage::Auth { .. } => {
                self.error(socket, "bad_request", "already authenticated".into())
                    .await
            }
            ClientMessage::Unsubscribe { channel } => {
                if self.channels.remove(&channel).is_some() {
                    self.live.hub.leave(&channel, self.viewer.id).await;
                }
                Ok(())
            }
            ClientMessage::Subscribe { channel, since } => {
                self.subscribe(socket, channel, since).await
            }
        }
    }

    async fn subscribe(
        &mut self,
        socket: &mut Socket,
        channel: Channel,
        since: Option<u64>,
    ) -> Result<(), Close> {
        if self.subscribe_budget.check().is_err() {
            return Err(Close::policy(
                "too_many_requests",
                "subscribing too fast; slow down",
            ));
        }
        if self.channels.contains_key(&channel) {
            let message = format!("already subscribed to {channel}");
            return self.error(socket, "bad_request", message).await;
        }
        if self.channels.len() >= self.live.settings.subscriptions_per_socket {
            return Err(Close::policy(
                "too_many_subscriptions",
                format!(
                    "at most {} channels per socket",
                    self.live.settings.subscriptions_per_socket
                ),
            ));
        }
        if let Err(reason) = self.live.hub.join(&channel, self.viewer.clone()).await {
            tracing::warn!(%channel, %reason, "cannot subscribe to a live channel");
            let message = "live view is unavailable; retry shortly".into();
            return self.error(socket, "unavailable", message).await;
        }
        let request = Subscribe {
            channel: channel.clone(),
            since,
        };
        let started = self
            .live
            .bus
            .request_as(&live::SUBSCRIBE, &request, &self.identity.principal)
            .await;
        let subscription = match started {
            Ok(subscription) => subscription,
            Err(error) => {
                self.live.hub.leave(&channel, self.viewer.id).await;
                let (code, message) = refusal(error);
                return self.error(socket, code, message).await;
            }
        };
        let starts_at = match (&subscription.snapshot, since) {
            (None, Some(since)) => since,
            _ => subscription.seq,
        };
        let subscribed = ServerMessage::Subscribed {
            channel: &channel,
            seq: starts_at,
            snapshot: subscription.snapshot.as_ref(),
        };
        self.reply(socket, &subscribed).await?;
        for frame in subscription.frames {
            self.reply_text(socket, Utf8Bytes::from(frame)).await?;
        }
        self.channels.insert(channel, subscription.seq);
        Ok(())
    }

    /// Authenticates the socket's token again (revoked, expired); a token that no
    /// longer holds ends the session. An auth outage does not.
    async fn check_token(&self) -> Result<(), Close> {
        let header = self.identity.token.header();
        match self.live.auth.authenticate(Some(&header)).await {
            Ok(_) | Err(AuthError::Unavailable(_)) => Ok(()),
            Err(_) => Err(Close::policy(
                "unauthorized",
                "the token is no longer valid",
            )),
        }
    }

    async fn error(&self, socket: &mut Socket, code: &str, message: String) -> Result<(), Close> {
        self.reply(
            socket,
            &ServerMessage::Error {
                code,
                message: &message,
            },
        )
        .await
    }

    async fn reply(&self, socket: &mut Socket, message: &ServerMessage<'_>) -> Result<(), Close> {
        self.reply_text(socket, encode(message)).await
    }

    async fn reply_text(&self, socket: &mut Socket, text: Utf8Bytes) -> Result<(), Close> {
        send(
            socket,
            self.encoding.message(text),
            self.live.settings.write_timeout,
        )
        .await
        .map_err(|()| Close::Gone)
    }
}

/// Whether a read failed because the client's message was over the size limit.
fn too_large(error: &tungstenite::Error) -> bool {
    matches!(error, tungstenite::Error::Capacity(_))
}

/// The error frame for a refused subscription; internals stay in the log.
fn refusal(error: RequestError) -> (&'static str, String) {
    match error {
        RequestError::Service(error) => {
            let code = match error.code {
                ErrorCode::BadRequest | ErrorCode::Unprocessable | ErrorCode::PayloadTooLarge => {
                    "bad_request"
                }
                ErrorCode::Unauthorized => "unauthorized",
                ErrorCode::Forbidden => "forbidden",
                ErrorCode::NotFound => "not_found",
                ErrorCode::Conflict => "conflict",
                ErrorCode::TooManyRequests => "too_many_requests",
                ErrorCode::Internal | ErrorCode::Unavailable => {
                    return (
                        "unavailable",
                        "live view is unavailable; retry shortly".into(),
                    )
                }
            };
            (code, error.message)
        }
        other => {
            tracing::warn!(error = %other, "live subscription failed");
            (
                "unavailable",
                "live view is unavailable; retry shortly".into(),
            )
        }
    }
}

fn encode(message: &ServerMessage<'_>) -> Utf8Bytes {
    // Serializing these plain structs cannot fail.
    Utf8Bytes::from(serde_json::to_string(message).unwrap_or_default())
}

/// Writes channel frames past tungstenite, once whatever it holds (a pong it owes, say)
/// is out, so that messages leave in the order they were sent.
async fn write_frames(socket: &mut Socket, frames: &[WireMessage]) -> Result<(), ()> {
    socket.flush().await.map_err(|_| ())?;
    wire::write_all(socket.get_mut(), frames)
        .await
        .map_err(|_| ())
}

async fn send(socket: &mut Socket, message: Message, timeout: Duration) -> Result<(), ()> {
    match tokio::time::timeout(timeout, socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}
