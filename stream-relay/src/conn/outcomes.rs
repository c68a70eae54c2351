//! What the writer made of an operation: acks, refusals (stale, funds, cap, revoked, version, storage), closes
//! reported back, and a revoked grant ending its sessions.

use alloy::primitives::{B256, U256};
use futures_util::Sink;
use tracing::info;
use uuid::Uuid;

use super::{Conn, Outbound};
use crate::{
    Error,
    audio::paid_seconds,
    guard::{Refusal, Revocation},
    protocol::{ChunkKeyFrame, ServerFrame},
    writer::{CloseReason, Outcome},
};

impl<O: Sink<Outbound>> Conn<'_, O> {
    pub(super) async fn on_outcome(&mut self, outcome: Outcome) {
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
                        let keys = self.keys_paid_by(session, cumulative);
                        self.send(ServerFrame::ack_with_keys(session, cumulative, keys)).await;
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
                            // Only tips are refused so.
                            Refusal::DuplicateTip => Error::StorageUnavailable,
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
            Outcome::Tip { grant_id, tip_id, result } => match result {
                Ok(()) => {
                    self.relay.metrics.tips_acked.inc();
                    info!(target: "beatstream::relay::conn", grant = %grant_id, tip = %tip_id, "tip stored");
                    self.send(ServerFrame::tip_ack(grant_id, tip_id)).await;
                }
                Err(refusal) => {
                    let mut revoked = None;
                    let err = match refusal {
                        Refusal::InsufficientFunds { available, needed } => {
                            Error::InsufficientFunds {
                                available: available.to_string(),
                                needed: needed.to_string(),
                            }
                        }
                        Refusal::CapExceeded { cap, total } => {
                            Error::CapExceeded { cap: cap.to_string(), total: total.to_string() }
                        }
                        Refusal::Revoked(revocation) => {
                            revoked = Some(revocation);
                            Error::GrantRevoked(revocation.to_string())
                        }
                        Refusal::DuplicateTip => Error::DuplicateTip(tip_id.to_string()),
                        Refusal::Stale { .. } | Refusal::Version { .. } | Refusal::Storage => {
                            Error::StorageUnavailable
                        }
                    };
                    self.relay.metrics.errors.with_label_values(&[err.code()]).inc();
                    self.send(ServerFrame::error(&err)).await;
                    if let Some(revocation) = revoked {
                        self.on_revoked(grant_id, revocation).await;
                    }
                }
            },
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

    /// Keys of the chunks of `session` that `cumulative`, just stored, pays for and that were not sent yet; none
    /// when the session has no audio, is gone (stopped, closed) or is paused.
    fn keys_paid_by(&mut self, session: Uuid, cumulative: U256) -> Vec<ChunkKeyFrame> {
        let Some(s) = self.sessions.get_mut(&session) else { return Vec::new() };
        let Some(audio) = &s.audio else { return Vec::new() };
        if s.paused {
            return Vec::new();
        }
        let paid =
            s.first_chunk.saturating_add(paid_seconds(cumulative, s.base, s.rate, s.seconds));
        let keys = audio.keys(s.keys_sent, paid);
        if let Some((last, _)) = keys.last() {
            s.keys_sent = last + 1;
        }
        keys.into_iter()
            .map(|(index, key)| ChunkKeyFrame {
                index,
                key: alloy::hex::encode_prefixed(key.expose()),
            })
            .collect()
    }

    /// The writer found the connection's grant revoked: every session under it ends (`closed`, reason
    /// `grant_revoked` in the database) and later `play`s and vouchers are refused with `grant_revoked` without
    /// asking the database. What was acked stays stored for the keeper, which the vault accepts until the
    /// revocation's `effective_at`. Yellow sessions on the connection do not spend the grant and play on.
    pub(super) async fn on_revoked(&mut self, grant_id: B256, revocation: Revocation) {
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
}
