//! One player connection: the protocol state machine, independent of the transport.
//!
//! [`serve`] reads [`Inbound`] items from any `Stream` and writes [`Outbound`] items to any `Sink`; the WebSocket
//! endpoint adapts axum's socket to these, tests can drive it with channels, and another transport (a Yellow
//! ClearNode adapter) can feed the same verification, accounting and storage path.

use std::{
    collections::{HashMap, VecDeque},
    pin::pin,
    sync::Arc,
    time::Duration,
};

use alloy::primitives::{Address, B256, U256};
use beatstream_primitives::{SessionGrant, time::unix_now};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};
use tracing::{debug, info, warn};
use uuid::Uuid;

use beatstream_yellow::{AppDefinition, Intent};

use crate::{
    Error, Result,
    guard::{Refusal, Revocation},
    protocol::{self, ClientMessage, ServerFrame, VoucherMsg, YellowOpenMsg, YellowUpdateMsg},
    relay::Relay,
    writer::{
        CloseReason, NewSession, Op, Outcome, SessionStatus, SessionUpdate, YellowOpenRow,
        YellowStateRow,
    },
    yellow::{Unsubmitted, Yellow},
};

/// A (grant, payee) pair of the vault, or an (app session, payee) pair of Yellow: what one cumulative counts.
type PairKey = (B256, Address);

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
    /// Set once a commit found the grant revoked: its sessions are closed and nothing more is played under it.
    revoked: Option<Revocation>,
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

    /// Checks that `cumulative` raises what the pair has vouched and stays within `limit`.
    fn check_raise(&self, cumulative: U256, limit: U256) -> Result<()> {
        let vouched = self.vouched();
        if cumulative <= vouched {
            return Err(Error::StaleVoucher {
                stored: vouched.to_string(),
                got: cumulative.to_string(),
            });
        }
        if cumulative > limit {
            return Err(Error::ExceedsOwed {
                limit: limit.to_string(),
                got: cumulative.to_string(),
            });
        }
        Ok(())
    }

    /// Notes a verified cumulative handed to the writer; its outcome comes back through the connection's loop,
    /// so never before this returns.
    fn submitted(&mut self, cumulative: U256, received: Instant) {
        self.pending = Some(cumulative);
        self.in_flight += 1;
        self.arrivals.push_back((cumulative, received));
    }
}

/// A live or paused session.
struct Session {
    id: Uuid,
    key: PairKey,
    listener: Address,
    payee: Address,
    rate: U256,
    base: U256,
    seconds: u32,
    duration: u32,
    paused: bool,
    next_beat: Instant,
    /// Beats waited after the track ended for the final voucher.
    overtime: u32,
    /// Set for a session paid through a Yellow app session.
    yellow: Option<Box<YellowSession>>,
}

/// What a connection knows of a Yellow session's app session.
struct YellowSession {
    definition: AppDefinition,
    /// Base units the listener deposited: every state's allocations add up to it.
    deposit: U256,
    /// Newest version verified (stored or waiting for its commit).
    version: u64,
    /// Newest version stored.
    stored: u64,
    /// The listener's active app session keys (key → owner), for `0xa2` signatures.
    keys: HashMap<Address, Address>,
    /// Acked versions the node has not accepted yet.
    unsubmitted: Unsubmitted,
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
    pairs: HashMap<PairKey, Pair>,
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
        self.close_all(if matches!(end, End::Shutdown) {
            CloseReason::Shutdown
        } else {
            CloseReason::Disconnected
        })
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
            Ok(ClientMessage::YellowOpen(msg)) => self.on_yellow_open(*msg).await,
            Ok(ClientMessage::YellowUpdate(msg)) => self.on_yellow_update(*msg, received).await,
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
        if let Some(revocation) = standing.revoked {
            return Err(Error::GrantRevoked(revocation.to_string()));
        }
        if standing.available.is_zero() {
            return Err(Error::InsufficientFunds {
                available: "0".into(),
                needed: "one beat".into(),
            });
        }
        let id = grant.id();
        for (payee, stored) in standing.pairs {
            self.pairs.insert((id, payee), Pair { stored, ..Pair::default() });
        }
        info!(target: "beatstream::relay::conn", grant = %id, listener = %grant.listener, available = %standing.available, "grant accepted");
        self.grant = Some(Grant { cap: grant.cap.min(MAX_GRANT_SPEND), grant, id, revoked: None });
        self.send(ServerFrame::ready(id, standing.available)).await;
        Ok(())
    }

    fn grant(&self) -> Result<&Grant> {
        let grant = self.grant.as_ref().ok_or(Error::HelloRequired)?;
        if let Some(revocation) = grant.revoked {
            return Err(Error::GrantRevoked(revocation.to_string()));
        }
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
        let key = (grant_id, terms.payee);
        let old = self.sessions.values().find(|s| s.key == key).map(|s| s.id);
        if old.is_none() && self.sessions.len() >= self.relay.limits.max_sessions {
            return Err(Error::TooManySessions(self.relay.limits.max_sessions));
        }
        if let Some(old) = old {
            self.close(old, CloseReason::Superseded).await;
        }
        let id = Uuid::new_v4();
        let pair = self.pairs.entry(key).or_default();
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
            yellow: None,
        };
        let session = Session {
            id,
            key,
            listener,
            payee: terms.payee,
            rate: terms.rate,
            base,
            seconds: 0,
            duration: terms.duration.max(1),
            paused: false,
            next_beat: Instant::now(),
            overtime: 0,
            yellow: None,
        };
        self.start(new, session, track_id).await
    }

    /// Records a new session, then tells the player and releases its first second.
    async fn start(&mut self, new: NewSession, session: Session, track_id: U256) -> Result<()> {
        // The session exists in the database before the player hears of it.
        let (done, stored) = oneshot::channel();
        let key = session.key;
        if let Err(e) = self.relay.writers.submit(Op::Open { session: new, done }).await {
            self.pairs.get_mut(&key).expect("inserted by the caller").live_rate = U256::ZERO;
            return Err(e);
        }
        if !stored.await.unwrap_or(false) {
            self.pairs.get_mut(&key).expect("inserted by the caller").live_rate = U256::ZERO;
            return Err(Error::StorageUnavailable);
        }
        let (id, payee, rate) = (session.id, session.payee, session.rate);
        let app_session = session.yellow.as_ref().map(|_| key.0);
        self.sessions.insert(id, session);
        self.relay.metrics.sessions_live.inc();
        info!(target: "beatstream::relay::conn", session = %id, track = %track_id, %payee, %rate, yellow = app_session.is_some(), "session started");
        self.send(ServerFrame::session(id, track_id, payee, rate, app_session)).await;
        // The first second is released at once; the voucher for it follows.
        self.beat(id).await;
        Ok(())
    }

    /// `yellowOpen`: checks the definition, creation, deposit and pre-signed close as the node will, creates and
    /// funds the app session on the node (co-signed), then starts the session like `play`.
    async fn on_yellow_open(&mut self, msg: YellowOpenMsg) -> Result<()> {
        let relay = self.relay;
        let yellow = relay.yellow.as_deref().ok_or(Error::YellowDisabled)?;
        if self.sessions.len() >= self.relay.limits.max_sessions {
            return Err(Error::TooManySessions(self.relay.limits.max_sessions));
        }
        let terms = self
            .relay
            .store
            .track(msg.track_id)
            .await
            .map_err(storage)?
            .ok_or_else(|| Error::UnknownTrack(msg.track_id.to_string()))?;
        let def = &msg.definition;
        let listener = yellow.check_definition(def, terms.payee)?;
        let id = def.session_id();
        if self.relay.store.yellow_session_exists(id).await.map_err(storage)? {
            return Err(Error::InvalidAppSession(format!(
                "app session {id} was already opened: use a new nonce"
            )));
        }
        Yellow::check_session_data(&msg.session_data)?;
        Yellow::check_session_data(&msg.deposit.session_data)?;
        let deposit = &msg.deposit;
        if deposit.app_session_id != id {
            return Err(Error::InvalidAppSession(format!(
                "deposit is for app session {}, not {id}",
                deposit.app_session_id
            )));
        }
        if deposit.intent != Intent::Deposit {
            return Err(Error::InvalidAppSession(
                "the first update must be a deposit (intent 1)".into(),
            ));
        }
        if deposit.version.0 != 2 {
            return Err(Error::WrongVersion { expected: 2, got: deposit.version.0 });
        }
        let (paid, funds) =
            yellow.check_allocations(def, listener, terms.payee, &deposit.allocations, None)?;
        if !paid.is_zero() {
            return Err(Error::AllocationMismatch("the deposit must not pay the artist".into()));
        }
        if funds < terms.rate {
            return Err(Error::InsufficientFunds {
                available: funds.to_string(),
                needed: terms.rate.to_string(),
            });
        }
        // 0xa2 signatures need the listener's registered keys, which only the node knows.
        let uses_keys = [&msg.create_sig, &msg.deposit_sig, &msg.close_sig]
            .iter()
            .any(|s| s.kind == beatstream_yellow::SignerKind::SessionKey);
        let keys =
            if uses_keys { yellow.session_keys(listener, id).await? } else { HashMap::new() };
        let verifier = &self.relay.verifier;
        let close = Yellow::close_of(deposit);
        for (sig, hash) in [
            (&msg.create_sig, def.creation_hash(&msg.session_data)),
            (&msg.deposit_sig, deposit.hash()),
            (&msg.close_sig, close.hash()),
        ] {
            if yellow.signer(verifier, sig, hash, &keys)? != listener {
                return Err(Error::WrongSigner);
            }
        }
        yellow.create_and_deposit(&msg, id).await?;

        let key = (id, terms.payee);
        let pair = self.pairs.entry(key).or_default();
        pair.live_rate = terms.rate;
        let session_id = Uuid::new_v4();
        pair.session = Some(session_id);
        let state = YellowStateRow {
            app_session_id: id,
            payee: terms.payee,
            listener,
            version: 2,
            intent: Intent::Deposit.code(),
            update: serde_json::to_string(deposit).expect("updates serialize"),
            paid: U256::ZERO,
            sig: msg.deposit_sig.to_bytes(),
            close_sig: msg.close_sig.to_bytes(),
        };
        let new = NewSession {
            session_id,
            grant_id: id,
            listener,
            payee: terms.payee,
            artist_node: terms.artist_node,
            track_id: msg.track_id,
            rate: terms.rate,
            base: U256::ZERO,
            relay_id: self.relay.relay_id.clone(),
            yellow: Some(Box::new(YellowOpenRow {
                operator: yellow.operator(),
                asset: yellow.asset.clone(),
                definition: serde_json::to_string(def).expect("definitions serialize"),
                deposit: funds,
                state,
            })),
        };
        let session = Session {
            id: session_id,
            key,
            listener,
            payee: terms.payee,
            rate: terms.rate,
            base: U256::ZERO,
            seconds: 0,
            // The deposit bounds the play as the track's length does.
            duration: terms.duration.max(1).min(
                u32::try_from(funds / terms.rate.max(U256::from(1))).unwrap_or(u32::MAX).max(1),
            ),
            paused: false,
            next_beat: Instant::now(),
            overtime: 0,
            yellow: Some(Box::new(YellowSession {
                definition: def.clone(),
                deposit: funds,
                version: 2,
                stored: 2,
                keys,
                unsubmitted: Unsubmitted::default(),
            })),
        };
        info!(target: "beatstream::relay::conn", app_session = %id, %listener, deposit = %funds, "yellow app session opened");
        self.start(new, session, msg.track_id).await
    }

    /// `yellowUpdate`: the next operate state of a Yellow session, checked as strictly as the node checks it.
    async fn on_yellow_update(&mut self, msg: YellowUpdateMsg, received: Instant) -> Result<()> {
        let relay = self.relay;
        let yellow = relay.yellow.as_deref().ok_or(Error::YellowDisabled)?;
        let s = self
            .sessions
            .get(&msg.session_id)
            .filter(|s| s.yellow.is_some())
            .ok_or_else(|| Error::UnknownSession(msg.session_id.to_string()))?;
        let y = s.yellow.as_ref().expect("filtered");
        let u = &msg.update;
        let id = s.key.0;
        if u.app_session_id != id {
            return Err(Error::InvalidAppSession(format!(
                "update is for app session {}, not {id}",
                u.app_session_id
            )));
        }
        if u.intent != Intent::Operate {
            return Err(Error::InvalidAppSession(
                "per-second updates are operate (intent 0)".into(),
            ));
        }
        if u.version.0 != y.version + 1 {
            return Err(Error::WrongVersion { expected: y.version + 1, got: u.version.0 });
        }
        Yellow::check_session_data(&u.session_data)?;
        let (paid, _) = yellow.check_allocations(
            &y.definition,
            s.listener,
            s.payee,
            &u.allocations,
            Some(y.deposit),
        )?;
        let pair = self.pairs.get(&s.key).expect("a session's pair exists");
        // Exactly what some released second owes: not a beat ahead, as a vault voucher may be.
        pair.check_raise(paid, pair.owed)?;
        if !s.rate.is_zero() && !((paid - s.base) % s.rate).is_zero() {
            return Err(Error::WrongAmount { got: paid.to_string(), owed: pair.owed.to_string() });
        }
        let verifier = &self.relay.verifier;
        let close = Yellow::close_of(u);
        for (sig, hash) in [(&msg.sig, u.hash()), (&msg.close_sig, close.hash())] {
            if yellow.signer(verifier, sig, hash, &y.keys)? != s.listener {
                return Err(Error::WrongSigner);
            }
        }
        let (key, listener, payee, version) = (s.key, s.listener, s.payee, u.version.0);
        let state = YellowStateRow {
            app_session_id: id,
            payee,
            listener,
            version,
            intent: Intent::Operate.code(),
            update: serde_json::to_string(u).expect("updates serialize"),
            paid,
            sig: msg.sig.to_bytes(),
            close_sig: msg.close_sig.to_bytes(),
        };
        self.relay.writers.submit(Op::YellowState { state, reply: self.reply.clone() }).await?;
        self.pairs.get_mut(&key).expect("looked up above").submitted(paid, received);
        if let Some(y) = self.sessions.get_mut(&msg.session_id).and_then(|s| s.yellow.as_mut()) {
            y.version = version;
        }
        Ok(())
    }

    async fn on_voucher(&mut self, v: VoucherMsg, received: Instant) -> Result<()> {
        let (grant_id, session_key, listener, nonce, cap) = {
            let g = self.grant()?;
            (g.id, g.grant.sessionKey, g.grant.listener, g.grant.nonce, g.cap)
        };
        if v.grant_id != grant_id {
            return Err(Error::WrongGrant(v.grant_id.to_string()));
        }
        let total: U256 =
            self.pairs.iter().filter(|(k, _)| k.0 == grant_id).map(|(_, p)| p.vouched()).sum();
        let key = (grant_id, v.payee);
        let pair = self
            .pairs
            .get(&key)
            .filter(|p| p.session.is_some())
            .ok_or_else(|| Error::UnknownSession(format!("no session pays {}", v.payee)))?;
        pair.check_raise(v.cumulative, pair.owed + pair.live_rate)?;
        let new_total = total - pair.vouched() + v.cumulative;
        if new_total > cap {
            return Err(Error::CapExceeded { cap: cap.to_string(), total: new_total.to_string() });
        }
        self.relay.verifier.check_voucher(session_key, grant_id, v.payee, v.cumulative, &v.sig)?;
        let sig: [u8; 65] = v.sig.as_slice().try_into().expect("checked by the verifier");
        let op = Op::Voucher {
            grant_id,
            payee: v.payee,
            listener,
            nonce,
            cap,
            cumulative: v.cumulative,
            sig,
            reply: self.reply.clone(),
        };
        self.relay.writers.submit(op).await?;
        self.pairs.get_mut(&key).expect("looked up above").submitted(v.cumulative, received);
        Ok(())
    }

    async fn on_stop(&mut self, session_id: Uuid) -> Result<()> {
        if self.grant.is_none() && self.sessions.is_empty() {
            return Err(Error::HelloRequired);
        }
        if !self.sessions.contains_key(&session_id) {
            return Err(Error::UnknownSession(session_id.to_string()));
        }
        self.close(session_id, CloseReason::Stopped).await;
        Ok(())
    }

    async fn on_outcome(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Voucher { key, cumulative, version, result } => {
                let Some(pair) = self.pairs.get_mut(&key) else { return };
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
                let mut revoked = None;
                match result {
                    Ok(()) => {
                        pair.stored = pair.stored.max(cumulative);
                        if let Some(at) = arrived {
                            self.relay.metrics.ack_latency.observe(at.elapsed().as_secs_f64());
                        }
                        self.relay.metrics.vouchers_acked.inc();
                        if let Some(version) = version
                            && let Some(y) =
                                self.sessions.get_mut(&session).and_then(|s| s.yellow.as_mut())
                        {
                            y.stored = y.stored.max(version);
                            y.unsubmitted.acked(version);
                            if let Some(yellow) = &self.relay.yellow {
                                yellow.wake();
                            }
                        }
                        self.send(ServerFrame::ack(session, cumulative)).await;
                        self.maybe_resume(key).await;
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
                            Refusal::Revoked(revocation) => {
                                revoked = Some(revocation);
                                Error::GrantRevoked(revocation.to_string())
                            }
                            Refusal::Version { expected } => {
                                Error::WrongVersion { expected, got: version.unwrap_or_default() }
                            }
                            Refusal::Storage => Error::StorageUnavailable,
                        };
                        // A refused Yellow state leaves the session at its newest stored version.
                        if let Some(y) =
                            self.sessions.get_mut(&session).and_then(|s| s.yellow.as_mut())
                        {
                            y.version = y.stored;
                        }
                        // Refusals found at commit time are not counted as abuse: another relay may have raced.
                        self.relay.metrics.errors.with_label_values(&[err.code()]).inc();
                        self.send(ServerFrame::error(&err)).await;
                    }
                }
                if let Some(revocation) = revoked {
                    self.on_revoked(key.0, revocation).await;
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
        let pair = self.pairs.get_mut(&s.key).expect("a session's pair exists");
        // A Yellow session whose acked states the node has not taken for too long stops releasing seconds.
        let node_behind = match (&mut s.yellow, &self.relay.yellow) {
            (Some(y), Some(yellow)) => {
                y.unsubmitted.lagging(yellow.accepted(&s.key.0), yellow.submit_grace)
            }
            _ => false,
        };
        if s.seconds >= s.duration {
            // The track is over: end once the last second is paid, or after the grace.
            s.overtime += 1;
            s.next_beat = Instant::now() + beat;
            if pair.stored >= pair.owed || s.overtime > grace {
                self.close(id, CloseReason::Ended).await;
            }
            return;
        }
        let behind = pair.owed.saturating_sub(pair.vouched());
        if behind > s.rate * U256::from(grace) || node_behind {
            s.next_beat = Instant::now() + beat;
            if !s.paused {
                s.paused = true;
                let update = update_of(s, SessionStatus::Paused, None);
                self.relay.metrics.sessions_live.dec();
                self.relay.metrics.sessions_paused.inc();
                let reason = if node_behind { "node_unreachable" } else { "vouchers_behind" };
                debug!(target: "beatstream::relay::conn", session = %id, behind = %behind, reason, "session paused");
                self.send(ServerFrame::paused(id, reason)).await;
                let _ = self.relay.writers.submit(Op::Update { update, reply: None }).await;
            }
            return;
        }
        if s.paused {
            // Caught up (vouchers, or the node took the backlog): play on.
            s.paused = false;
            let update = update_of(s, SessionStatus::Live, None);
            self.relay.metrics.sessions_paused.dec();
            self.relay.metrics.sessions_live.inc();
            let _ = self.relay.writers.submit(Op::Update { update, reply: None }).await;
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

    async fn maybe_resume(&mut self, key: PairKey) {
        let grace = self.relay.limits.grace_beats;
        let Some(pair) = self.pairs.get(&key) else { return };
        let Some(s) = pair.session.and_then(|id| self.sessions.get_mut(&id)) else { return };
        if !s.paused || pair.owed.saturating_sub(pair.stored) > s.rate * U256::from(grace) {
            return;
        }
        if let (Some(y), Some(yellow)) = (&mut s.yellow, &self.relay.yellow)
            && y.unsubmitted.lagging(yellow.accepted(&key.0), yellow.submit_grace)
        {
            return;
        }
        s.paused = false;
        s.next_beat = Instant::now();
        let update = update_of(s, SessionStatus::Live, None);
        self.relay.metrics.sessions_paused.dec();
        self.relay.metrics.sessions_live.inc();
        let _ = self.relay.writers.submit(Op::Update { update, reply: None }).await;
    }

    /// The writer found the connection's grant revoked: every session under it ends (`closed`, reason
    /// `grant_revoked` in the database) and later `play`s and vouchers are refused with `grant_revoked` without
    /// asking the database. What was acked stays stored for the keeper, which the vault accepts until the
    /// revocation's `effective_at`. Yellow sessions on the connection do not spend the grant and play on.
    async fn on_revoked(&mut self, grant_id: B256, revocation: Revocation) {
        match self.grant.as_mut() {
            Some(g) if g.id == grant_id => {
                if g.revoked.is_some() {
                    return;
                }
                g.revoked = Some(revocation);
            }
            _ => return,
        }
        info!(target: "beatstream::relay::conn", grant = %grant_id, %revocation, "grant revoked; closing its sessions");
        let ids: Vec<Uuid> = self
            .sessions
            .values()
            .filter(|s| s.key.0 == grant_id && s.yellow.is_none())
            .map(|s| s.id)
            .collect();
        for id in ids {
            self.close(id, CloseReason::GrantRevoked).await;
        }
    }

    /// Ends a session; its `closed` frame follows once the close is stored.
    async fn close(&mut self, id: Uuid, reason: CloseReason) {
        let Some(s) = self.sessions.remove(&id) else { return };
        let pair = self.pairs.get_mut(&s.key).expect("a session's pair exists");
        pair.live_rate = U256::ZERO;
        if s.paused {
            self.relay.metrics.sessions_paused.dec();
        } else {
            self.relay.metrics.sessions_live.dec();
        }
        let update = update_of(&s, SessionStatus::Closed, Some(reason));
        if s.yellow.is_some()
            && let Some(yellow) = &self.relay.yellow
        {
            yellow.wake();
        }
        info!(target: "beatstream::relay::conn", session = %id, reason = reason.as_str(), seconds = s.seconds, "session closed");
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

    async fn close_all(&mut self, reason: CloseReason) {
        let ids: Vec<Uuid> = self.sessions.keys().copied().collect();
        for id in ids {
            self.close(id, reason).await;
        }
    }
}

fn update_of(s: &Session, status: SessionStatus, reason: Option<CloseReason>) -> SessionUpdate {
    SessionUpdate {
        session_id: s.id,
        grant_id: s.key.0,
        payee: s.payee,
        listener: s.listener,
        base: s.base,
        seconds: s.seconds,
        status,
        reason,
        yellow: s.yellow.is_some(),
    }
}

fn storage(e: Error) -> Error {
    warn!(target: "beatstream::relay::conn", error = %e, "storage read failed");
    Error::StorageUnavailable
}
