//! One player connection: the protocol state machine, independent of the transport.
//!
//! [`serve`] reads [`Inbound`] items from any `Stream` and writes [`Outbound`] items to any `Sink`; the WebSocket
//! endpoint adapts axum's socket to these, tests can drive it with channels, and another transport (a Yellow
//! ClearNode adapter) can feed the same verification, accounting and storage path.

use std::{
    collections::{HashMap, VecDeque},
    pin::pin,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use alloy::primitives::{Address, B256, U256};
use beatstream_primitives::SessionGrant;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::{
    Error, Result,
    protocol::{self, ClientMessage, ServerFrame, VoucherMsg},
    relay::Relay,
    writer::{NewSession, Op, Outcome, Refusal, SessionUpdate},
};

/// The most a grant can spend in the vault (its cap is clamped to 48 bits there), so the relay clamps too.
const MAX_GRANT_SPEND: U256 = U256::from_limbs([(1 << 48) - 1, 0, 0, 0]);
/// The window over which rejected frames are counted.
const ABUSE_WINDOW: Duration = Duration::from_secs(10);

/// What the transport delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A text frame within the transport's hard limit.
    Text(String),
    /// A binary frame (not part of the protocol) of this many bytes.
    Binary(usize),
    /// A ping or pong: the peer is alive.
    Alive,
}

/// What the connection sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outbound {
    /// A protocol frame.
    Frame(ServerFrame),
    /// Close the connection with a WebSocket close code and a reason.
    Close {
        /// 1000 normal, 1001 going away, 1008 policy violation.
        code: u16,
        /// Short reason.
        reason: &'static str,
    },
}

/// The connection's grant.
struct Grant {
    grant: SessionGrant,
    id: B256,
    cap: U256,
}

/// What this connection knows of one (grant, payee) pair.
#[derive(Default)]
struct Pair {
    /// Newest cumulative stored (acked) or known from the database.
    stored: U256,
    /// Newest verified voucher waiting for its commit.
    pending: Option<U256>,
    in_flight: u32,
    /// When each waiting voucher arrived, for the ack latency.
    arrivals: VecDeque<(U256, Instant)>,
    /// The session this pair's vouchers pay for: the live one, or the last one.
    session: Option<Uuid>,
    /// The cumulative the last beat asked for.
    owed: U256,
    /// The rate of the live session; zero when none is live.
    live_rate: U256,
}

impl Pair {
    fn vouched(&self) -> U256 {
        self.pending.map_or(self.stored, |p| p.max(self.stored))
    }
}

/// A live or paused session.
struct Session {
    id: Uuid,
    payee: Address,
    rate: U256,
    base: U256,
    seconds: u32,
    duration: u32,
    paused: bool,
    next_beat: Instant,
    /// Beats waited after the track ended for the final voucher.
    overtime: u32,
}

/// Serves one connection until the peer leaves, it is closed for abuse or idleness, or the relay shuts down.
pub async fn serve<I, O>(relay: Arc<Relay>, inbound: I, outbound: O)
where
    I: Stream<Item = Inbound>,
    O: Sink<Outbound>,
{
    let (reply, results) = mpsc::unbounded_channel();
    let outbound = pin!(outbound);
    let mut conn = Conn {
        relay: &relay,
        out: outbound,
        grant: None,
        pairs: HashMap::new(),
        sessions: HashMap::new(),
        reply,
        tokens: f64::from(relay.limits.max_frames_per_sec * 2),
        refilled: Instant::now(),
        errors: VecDeque::new(),
        last_seen: Instant::now(),
        closing: 0,
        gone: false,
    };
    relay.metrics.connections.inc();
    conn.run(pin!(inbound), results).await;
    relay.metrics.connections.dec();
}

struct Conn<'a, O> {
    relay: &'a Relay,
    out: std::pin::Pin<&'a mut O>,
    grant: Option<Grant>,
    pairs: HashMap<Address, Pair>,
    sessions: HashMap<Uuid, Session>,
    reply: mpsc::UnboundedSender<Outcome>,
    tokens: f64,
    refilled: Instant,
    errors: VecDeque<Instant>,
    last_seen: Instant,
    /// Closes submitted whose outcome has not come back.
    closing: usize,
    gone: bool,
}

/// Why the loop ended.
enum End {
    PeerLeft,
    Idle,
    Abuse,
    Shutdown,
}

impl<O: Sink<Outbound>> Conn<'_, O> {
    async fn run<I: Stream<Item = Inbound>>(
        &mut self,
        mut inbound: std::pin::Pin<&mut I>,
        mut results: mpsc::UnboundedReceiver<Outcome>,
    ) {
        let shutdown = self.relay.shutdown.clone();
        let end = loop {
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break End::Shutdown,
                Some(outcome) = results.recv() => self.on_outcome(outcome).await,
                item = inbound.next() => match item {
                    None => break End::PeerLeft,
                    Some(item) => {
                        self.last_seen = Instant::now();
                        if let Some(end) = self.on_inbound(item).await { break end; }
                    }
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if self.last_seen.elapsed() >= self.relay.limits.idle_timeout { break End::Idle; }
                    self.on_tick().await;
                }
            }
            if self.gone {
                break End::PeerLeft;
            }
        };
        let (code, reason) = match end {
            End::PeerLeft => (1000, "disconnected"),
            End::Idle => (1000, "idle timeout"),
            End::Abuse => (1008, "too many errors"),
            End::Shutdown => (1001, "relay shutting down"),
        };
        if !matches!(end, End::PeerLeft) {
            self.relay.metrics.closes.with_label_values(&[reason]).inc();
            info!(target: "beatstream::relay::conn", reason, sessions = self.sessions.len(), "closing connection");
        }
        self.close_all(if matches!(end, End::Shutdown) { "shutdown" } else { "disconnected" })
            .await;
        if !matches!(end, End::PeerLeft) {
            // Let stored vouchers be acked and closed sessions be reported before the socket closes.
            let wait = tokio::time::sleep(self.relay.limits.shutdown_wait);
            let mut wait = pin!(wait);
            while self.closing > 0 || self.pairs.values().any(|p| p.in_flight > 0) {
                tokio::select! {
                    _ = &mut wait => break,
                    Some(outcome) = results.recv() => self.on_outcome(outcome).await,
                }
            }
            self.send_raw(Outbound::Close { code, reason }).await;
        }
    }

    fn next_deadline(&self) -> Instant {
        let idle = self.last_seen + self.relay.limits.idle_timeout;
        self.sessions.values().map(|s| s.next_beat).fold(idle, Instant::min)
    }

    async fn send(&mut self, frame: ServerFrame) {
        self.send_raw(Outbound::Frame(frame)).await;
    }

    async fn send_raw(&mut self, item: Outbound) {
        if !self.gone && self.out.as_mut().send(item).await.is_err() {
            self.gone = true;
        }
    }

    /// Sends the error frame for `err`; returns `Some(End::Abuse)` when the connection has misbehaved too often.
    async fn reject(&mut self, err: Error) -> Option<End> {
        self.relay.metrics.errors.with_label_values(&[err.code()]).inc();
        debug!(target: "beatstream::relay::conn", code = err.code(), error = %err, "rejected frame");
        let abuse = err.is_abuse();
        self.send(ServerFrame::error(&err)).await;
        if abuse {
            let now = Instant::now();
            self.errors.push_back(now);
            while self.errors.front().is_some_and(|t| now.duration_since(*t) > ABUSE_WINDOW) {
                self.errors.pop_front();
            }
            if self.errors.len() > self.relay.limits.max_errors as usize {
                return Some(End::Abuse);
            }
        }
        None
    }

    async fn on_inbound(&mut self, item: Inbound) -> Option<End> {
        let text = match item {
            Inbound::Alive => return None,
            Inbound::Binary(_) => {
                return self
                    .reject(Error::MalformedFrame(
                        "binary frames are not part of the protocol".into(),
                    ))
                    .await;
            }
            Inbound::Text(text) => text,
        };
        if !self.take_token() {
            return self.reject(Error::RateLimited(self.relay.limits.max_frames_per_sec)).await;
        }
        if text.len() > self.relay.limits.max_frame_bytes {
            let limit = self.relay.limits.max_frame_bytes;
            return self.reject(Error::FrameTooLarge { size: text.len(), limit }).await;
        }
        let received = Instant::now();
        let result = match protocol::decode(&text) {
            Err(e) => Err(e),
            Ok(ClientMessage::Hello { grant, grant_sig }) => self.on_hello(grant, grant_sig).await,
            Ok(ClientMessage::Play { track_id }) => self.on_play(track_id).await,
            Ok(ClientMessage::Voucher(v)) => self.on_voucher(v, received).await,
            Ok(ClientMessage::Stop { session_id }) => self.on_stop(session_id).await,
        };
        match result {
            Ok(()) => None,
            Err(e) => self.reject(e).await,
        }
    }

    fn take_token(&mut self) -> bool {
        let rate = f64::from(self.relay.limits.max_frames_per_sec);
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * rate).min(rate * 2.0);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    async fn on_hello(&mut self, grant: SessionGrant, sig: Vec<u8>) -> Result<()> {
        if self.grant.is_some() {
            return Err(Error::DuplicateHello);
        }
        if grant.listener.is_zero() {
            return Err(Error::InvalidGrant("listener is the zero address"));
        }
        if grant.sessionKey.is_zero() {
            return Err(Error::InvalidGrant("sessionKey is the zero address"));
        }
        if grant.cap.is_zero() {
            return Err(Error::InvalidGrant("cap is zero"));
        }
        if unix_now() > grant.expiresAt {
            return Err(Error::GrantExpired(grant.expiresAt));
        }
        self.relay.verifier.check_grant(&grant, &sig).await?;
        let standing = self.relay.store.register_grant(&grant, &sig).await.map_err(storage)?;
        if standing.available.is_zero() {
            return Err(Error::InsufficientFunds {
                available: "0".into(),
                needed: "one beat".into(),
            });
        }
        let id = grant.id();
        for (payee, stored) in standing.pairs {
            self.pairs.insert(payee, Pair { stored, ..Pair::default() });
        }
        info!(target: "beatstream::relay::conn", grant = %id, listener = %grant.listener, available = %standing.available, "grant accepted");
        self.grant = Some(Grant { cap: grant.cap.min(MAX_GRANT_SPEND), grant, id });
        self.send(ServerFrame::ready(id, standing.available)).await;
        Ok(())
    }

    fn grant(&self) -> Result<&Grant> {
        let grant = self.grant.as_ref().ok_or(Error::HelloRequired)?;
        if unix_now() > grant.grant.expiresAt {
            return Err(Error::GrantExpired(grant.grant.expiresAt));
        }
        Ok(grant)
    }

    async fn on_play(&mut self, track_id: U256) -> Result<()> {
        let (grant_id, listener) = {
            let g = self.grant()?;
            (g.id, g.grant.listener)
        };
        let terms = self
            .relay
            .store
            .track(track_id)
            .await
            .map_err(storage)?
            .ok_or_else(|| Error::UnknownTrack(track_id.to_string()))?;
        let old = self.sessions.values().find(|s| s.payee == terms.payee).map(|s| s.id);
        if old.is_none() && self.sessions.len() >= self.relay.limits.max_sessions {
            return Err(Error::TooManySessions(self.relay.limits.max_sessions));
        }
        if let Some(old) = old {
            self.close(old, "superseded").await;
        }
        let id = Uuid::new_v4();
        let pair = self.pairs.entry(terms.payee).or_default();
        let base = pair.vouched();
        pair.session = Some(id);
        pair.live_rate = terms.rate;
        pair.owed = base;
        let new = NewSession {
            session_id: id,
            grant_id,
            listener,
            payee: terms.payee,
            artist_node: terms.artist_node,
            track_id,
            rate: terms.rate,
            base,
            relay_id: self.relay.relay_id.clone(),
        };
        // The session exists in the database before the player hears of it.
        let (done, stored) = oneshot::channel();
        self.relay.writers.submit(Op::Open { session: new, done }).await?;
        if !stored.await.unwrap_or(false) {
            let pair = self.pairs.get_mut(&terms.payee).expect("inserted above");
            pair.live_rate = U256::ZERO;
            return Err(Error::StorageUnavailable);
        }
        self.sessions.insert(
            id,
            Session {
                id,
                payee: terms.payee,
                rate: terms.rate,
                base,
                seconds: 0,
                duration: terms.duration.max(1),
                paused: false,
                next_beat: Instant::now(),
                overtime: 0,
            },
        );
        self.relay.metrics.sessions_live.inc();
        info!(target: "beatstream::relay::conn", session = %id, track = %track_id, payee = %terms.payee, rate = %terms.rate, "session started");
        self.send(ServerFrame::session(id, track_id, terms.payee, terms.rate)).await;
        // The first second is released at once; the voucher for it follows.
        self.beat(id).await;
        Ok(())
    }

    async fn on_voucher(&mut self, v: VoucherMsg, received: Instant) -> Result<()> {
        let (grant_id, session_key, listener, cap) = {
            let g = self.grant()?;
            (g.id, g.grant.sessionKey, g.grant.listener, g.cap)
        };
        if v.grant_id != grant_id {
            return Err(Error::WrongGrant(v.grant_id.to_string()));
        }
        let total: U256 = self.pairs.values().map(Pair::vouched).sum();
        let pair = self
            .pairs
            .get(&v.payee)
            .filter(|p| p.session.is_some())
            .ok_or_else(|| Error::UnknownSession(format!("no session pays {}", v.payee)))?;
        let vouched = pair.vouched();
        if v.cumulative <= vouched {
            return Err(Error::StaleVoucher {
                stored: vouched.to_string(),
                got: v.cumulative.to_string(),
            });
        }
        let limit = pair.owed + pair.live_rate;
        if v.cumulative > limit {
            return Err(Error::ExceedsOwed {
                limit: limit.to_string(),
                got: v.cumulative.to_string(),
            });
        }
        let new_total = total - vouched + v.cumulative;
        if new_total > cap {
            return Err(Error::CapExceeded { cap: cap.to_string(), total: new_total.to_string() });
        }
        self.relay.verifier.check_voucher(session_key, grant_id, v.payee, v.cumulative, &v.sig)?;
        let sig: [u8; 65] = v.sig.as_slice().try_into().expect("checked by the verifier");
        let pair = self.pairs.get_mut(&v.payee).expect("looked up above");
        pair.pending = Some(v.cumulative);
        pair.in_flight += 1;
        pair.arrivals.push_back((v.cumulative, received));
        let op = Op::Voucher {
            grant_id,
            payee: v.payee,
            listener,
            cap,
            cumulative: v.cumulative,
            sig,
            reply: self.reply.clone(),
        };
        if let Err(e) = self.relay.writers.submit(op).await {
            let pair = self.pairs.get_mut(&v.payee).expect("looked up above");
            pair.in_flight -= 1;
            pair.arrivals.pop_back();
            if pair.in_flight == 0 {
                pair.pending = None;
            }
            return Err(e);
        }
        Ok(())
    }

    async fn on_stop(&mut self, session_id: Uuid) -> Result<()> {
        if self.grant.is_none() {
            return Err(Error::HelloRequired);
        }
        if !self.sessions.contains_key(&session_id) {
            return Err(Error::UnknownSession(session_id.to_string()));
        }
        self.close(session_id, "stopped").await;
        Ok(())
    }

    async fn on_outcome(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Voucher { payee, cumulative, result } => {
                let Some(pair) = self.pairs.get_mut(&payee) else { return };
                pair.in_flight = pair.in_flight.saturating_sub(1);
                if pair.in_flight == 0 {
                    pair.pending = None;
                }
                let mut arrived = None;
                while let Some(&(c, at)) = pair.arrivals.front() {
                    if c > cumulative {
                        break;
                    }
                    pair.arrivals.pop_front();
                    if c == cumulative {
                        arrived = Some(at);
                    }
                }
                let session = pair.session.unwrap_or_default();
                match result {
                    Ok(()) => {
                        pair.stored = pair.stored.max(cumulative);
                        if let Some(at) = arrived {
                            self.relay.metrics.ack_latency.observe(at.elapsed().as_secs_f64());
                        }
                        self.relay.metrics.vouchers_acked.inc();
                        self.send(ServerFrame::ack(session, cumulative)).await;
                        self.maybe_resume(payee).await;
                    }
                    Err(refusal) => {
                        let err = match refusal {
                            Refusal::Stale { stored } => {
                                pair.stored = pair.stored.max(stored);
                                Error::StaleVoucher {
                                    stored: stored.to_string(),
                                    got: cumulative.to_string(),
                                }
                            }
                            Refusal::InsufficientFunds { available, needed } => {
                                Error::InsufficientFunds {
                                    available: available.to_string(),
                                    needed: needed.to_string(),
                                }
                            }
                            Refusal::CapExceeded { cap, total } => Error::CapExceeded {
                                cap: cap.to_string(),
                                total: total.to_string(),
                            },
                            Refusal::Storage => Error::StorageUnavailable,
                        };
                        // Refusals found at commit time are not counted as abuse: another relay may have raced.
                        self.relay.metrics.errors.with_label_values(&[err.code()]).inc();
                        self.send(ServerFrame::error(&err)).await;
                    }
                }
            }
            Outcome::Closed { session_id, amount } => {
                self.closing = self.closing.saturating_sub(1);
                let total = match amount {
                    Some(amount) => amount,
                    None => {
                        self.send(ServerFrame::error(&Error::StorageUnavailable)).await;
                        U256::ZERO
                    }
                };
                self.send(ServerFrame::closed(session_id, total)).await;
            }
        }
    }

    async fn on_tick(&mut self) {
        let now = Instant::now();
        let due: Vec<Uuid> =
            self.sessions.values().filter(|s| s.next_beat <= now).map(|s| s.id).collect();
        for id in due {
            self.beat(id).await;
        }
    }

    /// Releases the next second of a session, or pauses or ends it.
    async fn beat(&mut self, id: Uuid) {
        let grace = self.relay.limits.grace_beats;
        let beat = self.relay.limits.beat;
        let Some(s) = self.sessions.get_mut(&id) else { return };
        let pair = self.pairs.get_mut(&s.payee).expect("a session's pair exists");
        if s.seconds >= s.duration {
            // The track is over: end once the last second is paid, or after the grace.
            s.overtime += 1;
            s.next_beat = Instant::now() + beat;
            if pair.stored >= pair.owed || s.overtime > grace {
                self.close(id, "ended").await;
            }
            return;
        }
        let behind = pair.owed.saturating_sub(pair.vouched());
        if behind > s.rate * U256::from(grace) {
            s.next_beat = Instant::now() + beat;
            if !s.paused {
                s.paused = true;
                let update = update_of(s, pair, self.grant.as_ref(), "paused", None);
                self.relay.metrics.sessions_live.dec();
                self.relay.metrics.sessions_paused.inc();
                debug!(target: "beatstream::relay::conn", session = %id, behind = %behind, "session paused");
                self.send(ServerFrame::paused(id, "vouchers_behind")).await;
                let _ = self.relay.writers.submit(Op::Update { update, reply: None }).await;
            }
            return;
        }
        s.seconds += 1;
        pair.owed = s.base + s.rate * U256::from(s.seconds);
        s.next_beat += beat;
        // A relay that fell behind (a long pause in the runtime) does not burst the missed beats.
        let now = Instant::now();
        if s.next_beat < now {
            s.next_beat = now + beat;
        }
        let frame = ServerFrame::beat(id, s.seconds, pair.owed);
        self.send(frame).await;
    }

    async fn maybe_resume(&mut self, payee: Address) {
        let grace = self.relay.limits.grace_beats;
        let Some(pair) = self.pairs.get(&payee) else { return };
        let Some(s) = pair.session.and_then(|id| self.sessions.get_mut(&id)) else { return };
        if !s.paused || pair.owed.saturating_sub(pair.stored) > s.rate * U256::from(grace) {
            return;
        }
        s.paused = false;
        s.next_beat = Instant::now();
        let update = update_of(s, pair, self.grant.as_ref(), "live", None);
        self.relay.metrics.sessions_paused.dec();
        self.relay.metrics.sessions_live.inc();
        let _ = self.relay.writers.submit(Op::Update { update, reply: None }).await;
    }

    /// Ends a session; its `closed` frame follows once the close is stored.
    async fn close(&mut self, id: Uuid, reason: &'static str) {
        let Some(s) = self.sessions.remove(&id) else { return };
        let pair = self.pairs.get_mut(&s.payee).expect("a session's pair exists");
        pair.live_rate = U256::ZERO;
        if s.paused {
            self.relay.metrics.sessions_paused.dec();
        } else {
            self.relay.metrics.sessions_live.dec();
        }
        let update = update_of(&s, pair, self.grant.as_ref(), "closed", Some(reason));
        info!(target: "beatstream::relay::conn", session = %id, reason, seconds = s.seconds, "session closed");
        let reply = (!self.gone).then(|| self.reply.clone());
        let expects_reply = reply.is_some();
        match self.relay.writers.submit(Op::Update { update, reply }).await {
            Ok(()) if expects_reply => self.closing += 1,
            Ok(()) => {}
            Err(e) => {
                warn!(target: "beatstream::relay::conn", session = %id, error = %e, "session close not recorded")
            }
        }
    }

    async fn close_all(&mut self, reason: &'static str) {
        let ids: Vec<Uuid> = self.sessions.keys().copied().collect();
        for id in ids {
            self.close(id, reason).await;
        }
    }
}

fn update_of(
    s: &Session,
    pair: &Pair,
    grant: Option<&Grant>,
    status: &'static str,
    reason: Option<&'static str>,
) -> SessionUpdate {
    let grant = grant.expect("sessions exist only under a grant");
    let _ = pair;
    SessionUpdate {
        session_id: s.id,
        grant_id: grant.id,
        payee: s.payee,
        listener: grant.grant.listener,
        base: s.base,
        seconds: s.seconds,
        status,
        reason,
    }
}

fn storage(e: Error) -> Error {
    warn!(target: "beatstream::relay::conn", error = %e, "storage read failed");
    Error::StorageUnavailable
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
