//! The Yellow transport: `yellowOpen` (an app session created and funded on the node, then played like `play`)
//! and the per-second `yellowUpdate`, checked as strictly as the node checks it.

use std::collections::HashMap;

use alloy::primitives::U256;
use futures_util::Sink;
use tokio::time::Instant;
use tracing::info;
use uuid::Uuid;

use beatstream_yellow::Intent;

use super::{Conn, Outbound, Session, YellowSession, storage};
use crate::{
    Error, Result,
    protocol::{YellowOpenMsg, YellowUpdateMsg},
    writer::{NewSession, Op, YellowOpenRow, YellowStateRow},
    yellow::{Unsubmitted, Yellow},
};

impl<O: Sink<Outbound>> Conn<'_, O> {
    /// `yellowOpen`: checks the definition, creation, deposit and pre-signed close as the node will, creates and
    /// funds the app session on the node (co-signed), then starts the session like `play`.
    pub(super) async fn on_yellow_open(&mut self, msg: YellowOpenMsg) -> Result<()> {
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
        let audio = self.track_audio(&terms)?;
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
            audio,
            first_chunk: 0,
            keys_sent: 0,
            quiet: false,
            announce: true,
        };
        info!(target: "beatstream::relay::conn", app_session = %id, %listener, deposit = %funds, "yellow app session opened");
        self.start(new, session, msg.track_id).await
    }

    /// `yellowUpdate`: the next operate state of a Yellow session, checked as strictly as the node checks it.
    pub(super) async fn on_yellow_update(
        &mut self,
        msg: YellowUpdateMsg,
        received: Instant,
    ) -> Result<()> {
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
}
