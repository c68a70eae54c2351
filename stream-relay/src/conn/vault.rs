//! The vault transport: `hello` with a signed grant, `play` of a track, and the per-second `voucher` checked
//! against the grant (session key, cap, what is owed) before it goes to the writer.

use alloy::primitives::U256;
use beatstream_primitives::{SessionGrant, eip712::MAX_TIP_MESSAGE_BYTES, time::unix_now};
use futures_util::Sink;
use tokio::time::Instant;
use tracing::{Span, info};
use uuid::Uuid;

use super::{Conn, Grant, MAX_GRANT_SPEND, Outbound, Pair, Session, storage};
use crate::{
    Error, Result,
    protocol::{ServerFrame, TipMsg, VoucherMsg},
    writer::{CloseReason, NewSession, Op, TipRow},
};

impl<O: Sink<Outbound>> Conn<'_, O> {
    pub(super) async fn on_hello(&mut self, grant: SessionGrant, sig: Vec<u8>) -> Result<()> {
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
        let span = Span::current();
        span.record("listener", tracing::field::display(grant.listener));
        span.record("grant", tracing::field::display(id));
        info!(target: "beatstream::relay::conn", grant = %id, listener = %grant.listener, available = %standing.available, "grant accepted");
        self.grant = Some(Grant { cap: grant.cap.min(MAX_GRANT_SPEND), grant, id, revoked: None });
        self.send(ServerFrame::ready(id, standing.available)).await;
        Ok(())
    }

    pub(super) fn grant(&self) -> Result<&Grant> {
        let grant = self.grant.as_ref().ok_or(Error::HelloRequired)?;
        if let Some(revocation) = grant.revoked {
            return Err(Error::GrantRevoked(revocation.to_string()));
        }
        if unix_now() > grant.grant.expiresAt {
            return Err(Error::GrantExpired(grant.grant.expiresAt));
        }
        Ok(grant)
    }

    pub(super) async fn on_play(&mut self, track_id: U256, from: u32, beats: bool) -> Result<()> {
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
        let duration = terms.duration.max(1);
        if from >= duration {
            return Err(Error::InvalidField(format!(
                "from: {from} is not a second of the track (it lasts {duration} s)"
            )));
        }
        let audio = self.track_audio(&terms)?;
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
            // The seconds left from `from` to the end.
            duration: duration - from,
            paused: false,
            next_beat: Instant::now(),
            overtime: 0,
            yellow: None,
            audio,
            first_chunk: from,
            keys_sent: from,
            quiet: !beats,
            announce: true,
        };
        self.start(new, session, track_id).await
    }

    pub(super) async fn on_voucher(&mut self, v: VoucherMsg, received: Instant) -> Result<()> {
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

    /// A tip: checked like a voucher (grant, signature, a payee the relay knows, the message's length), then decided
    /// and stored by the listener's writer under its lock, counted against the listener's funds and the grant's cap;
    /// `tipAck` once stored.
    pub(super) async fn on_tip(&mut self, tip: TipMsg) -> Result<()> {
        let (grant_id, session_key, listener, nonce, cap) = {
            let g = self.grant()?;
            (g.id, g.grant.sessionKey, g.grant.listener, g.grant.nonce, g.cap)
        };
        if tip.grant_id != grant_id {
            return Err(Error::WrongGrant(tip.grant_id.to_string()));
        }
        if tip.amount.is_zero() {
            return Err(Error::InvalidField("amount: a tip is more than 0".into()));
        }
        if tip.message.len() > MAX_TIP_MESSAGE_BYTES {
            return Err(Error::MessageTooLong(tip.message.len()));
        }
        if tip.amount > cap {
            return Err(Error::CapExceeded { cap: cap.to_string(), total: tip.amount.to_string() });
        }
        self.relay.verifier.check_tip(session_key, &tip)?;
        if !self.relay.store.is_payee(tip.payee).await.map_err(storage)? {
            return Err(Error::UnknownPayee(tip.payee.to_string()));
        }
        let sig: [u8; 65] = tip.sig.as_slice().try_into().expect("checked by the verifier");
        let op = Op::Tip {
            tip: TipRow {
                grant_id,
                tip_id: tip.tip_id,
                listener,
                payee: tip.payee,
                amount: tip.amount,
                message: tip.message,
                sig,
            },
            nonce,
            cap,
            reply: self.reply.clone(),
        };
        self.relay.writers.submit(op).await
    }
}
