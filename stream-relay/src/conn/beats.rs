//! Sessions and their beats: start, the beat that releases each second (or pauses or ends the session), resume,
//! `stop` and close.

use alloy::primitives::U256;
use futures_util::Sink;
use tokio::{sync::oneshot, time::Instant};
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::{Conn, Outbound, PairKey, Session};
use crate::{
    Error, Result,
    protocol::ServerFrame,
    writer::{CloseReason, NewSession, Op, SessionStatus, SessionUpdate},
};

impl<O: Sink<Outbound>> Conn<'_, O> {
    /// Records a new session, then tells the player and releases its first second.
    pub(super) async fn start(
        &mut self,
        new: NewSession,
        session: Session,
        track_id: U256,
    ) -> Result<()> {
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

    pub(super) async fn on_tick(&mut self) {
        let now = Instant::now();
        let due: Vec<Uuid> =
            self.sessions.values().filter(|s| s.next_beat <= now).map(|s| s.id).collect();
        for id in due {
            self.beat(id).await;
        }
    }

    /// Releases the next second of a session, or pauses or ends it.
    pub(super) async fn beat(&mut self, id: Uuid) {
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
                if s.quiet {
                    // A quiet player hears again what is owed: paying it resumes the session.
                    let (second, owed) = (s.seconds, pair.owed);
                    self.send(ServerFrame::beat(id, second, owed)).await;
                }
                self.send(ServerFrame::paused(id, reason)).await;
                let _ = self.relay.writers.submit(Op::Update { update, reply: None }).await;
            }
            return;
        }
        if s.paused {
            // Caught up (vouchers, or the node took the backlog): play on, telling a quiet player where it stands.
            s.paused = false;
            s.announce = true;
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
        // A quiet session hears the beat that starts it, the newest again when it pauses, and the first after a
        // resume; it pays the rest on its own clock (a voucher may run one beat ahead).
        if !s.quiet || std::mem::take(&mut s.announce) {
            let frame = ServerFrame::beat(id, s.seconds, pair.owed);
            self.send(frame).await;
        }
    }

    pub(super) async fn maybe_resume(&mut self, key: PairKey) {
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
        s.announce = true;
        s.next_beat = Instant::now();
        let update = update_of(s, SessionStatus::Live, None);
        self.relay.metrics.sessions_paused.dec();
        self.relay.metrics.sessions_live.inc();
        let _ = self.relay.writers.submit(Op::Update { update, reply: None }).await;
    }

    pub(super) async fn on_stop(&mut self, session_id: Uuid) -> Result<()> {
        if self.grant.is_none() && self.sessions.is_empty() {
            return Err(Error::HelloRequired);
        }
        if !self.sessions.contains_key(&session_id) {
            return Err(Error::UnknownSession(session_id.to_string()));
        }
        self.close(session_id, CloseReason::Stopped).await;
        Ok(())
    }

    /// Ends a session; its `closed` frame follows once the close is stored.
    pub(super) async fn close(&mut self, id: Uuid, reason: CloseReason) {
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

    pub(super) async fn close_all(&mut self, reason: CloseReason) {
        let ids: Vec<Uuid> = self.sessions.keys().copied().collect();
        for id in ids {
            self.close(id, reason).await;
        }
    }
}

pub(super) fn update_of(
    s: &Session,
    status: SessionStatus,
    reason: Option<CloseReason>,
) -> SessionUpdate {
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
