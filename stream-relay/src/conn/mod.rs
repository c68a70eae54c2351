//! One player connection: the protocol state machine, independent of the transport.
//!
//! [`serve`] reads [`Inbound`] items from any `Stream` and writes [`Outbound`] items to any `Sink`; the WebSocket
//! endpoint adapts axum's socket to these, tests can drive it with channels, and another transport (a Yellow
//! ClearNode adapter) can feed the same verification, accounting and storage path.
//!
//! This file holds the connection's state and its loop (frames in, rate limiting, rejections, timers); each
//! transport's frames are handled in their own file: [`vault`] (`hello`, `play`, `voucher`), [`yellow`]
//! (`yellowOpen`, `yellowUpdate`), [`beats`] (sessions: beats, pauses, `stop`, closes) and [`outcomes`] (what the
//! writer made of each operation). Every connection runs in a `conn` span whose `listener` and `grant` are recorded
//! at `hello`, so `RUST_LOG=beatstream::relay=debug` can follow one connection.

mod beats;
mod outcomes;
mod vault;
mod yellow;

use std::{
    collections::{HashMap, VecDeque},
    pin::pin,
    sync::Arc,
    time::Duration,
};

use alloy::primitives::{Address, B256, U256};
use beatstream_primitives::SessionGrant;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::{sync::mpsc, time::Instant};
use tracing::{Instrument, debug, field::Empty, info, info_span, warn};
use uuid::Uuid;

use beatstream_yellow::AppDefinition;

use crate::{
    Error, Result,
    audio::TrackAudio,
    db::store::TrackTerms,
    guard::Revocation,
    protocol::{self, ClientMessage, ServerFrame},
    relay::Relay,
    writer::{CloseReason, Outcome},
    yellow::Unsubmitted,
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
    /// The track's audio, when it has some on this node: chunk keys go out with the acks that pay for them.
    audio: Option<Arc<TrackAudio>>,
    /// The chunk of the session's first second (`play`'s `from`).
    first_chunk: u32,
    /// Chunks whose keys this session has sent: `[first_chunk, keys_sent)`.
    keys_sent: u32,
    /// A quiet session (`play` with `beats: false`): only the beat that starts it and the first after a resume
    /// are sent.
    quiet: bool,
    /// The next beat is sent even to a quiet session.
    announce: bool,
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

impl<O: Sink<Outbound>> Conn<'_, O> {
    /// The audio of the track `terms` describe, checked against the chain and opened, or `None` for a track with no
    /// audio on this node.
    fn track_audio(&self, terms: &TrackTerms) -> Result<Option<Arc<TrackAudio>>> {
        let Some(stored) = &terms.audio else { return Ok(None) };
        let audio = TrackAudio::open(
            stored,
            terms.content_hash,
            terms.duration,
            self.relay.audio_key.as_ref(),
        )?;
        Ok(Some(Arc::new(audio)))
    }
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
    let span =
        info_span!(target: "beatstream::relay::conn", "conn", listener = Empty, grant = Empty);
    conn.run(pin!(inbound), results).instrument(span).await;
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
            Ok(ClientMessage::Play { track_id, from, beats }) => {
                self.on_play(track_id, from, beats).await
            }
            Ok(ClientMessage::Voucher(v)) => self.on_voucher(v, received).await,
            Ok(ClientMessage::Tip(tip)) => self.on_tip(tip).await,
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
}

fn storage(e: Error) -> Error {
    warn!(target: "beatstream::relay::conn", error = %e, "storage read failed");
    Error::StorageUnavailable
}
