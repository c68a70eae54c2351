//! The active keeper's state between steps, and what following and settling share: signing, broadcasting, fees
//! under the ceiling, the stall check.

use std::{collections::HashSet, time::Instant};

use alloy::primitives::{Address, Bytes};
use beatstream_signer::Signer;
use tracing::{debug, warn};

use crate::{
    Error, FailPoint, Metrics, Options, Result,
    chain::{self, Chain, Sent, TxParams},
    config::Target,
    db::{Attempt, AttemptKind, Db, Journal, LeaseKey},
    policy::fees,
};

/// The active keeper's state between steps.
pub(crate) struct Keeper {
    pub(super) db: Db,
    pub(super) journal: Journal,
    pub(super) chain: Chain,
    pub(super) signer: Signer,
    pub(super) target: Target,
    pub(super) options: Options,
    pub(super) metrics: Metrics,
    pub(super) last_batch_at: Instant,
    /// Since when settleable value has been due without a batch taking it.
    pub(super) due_since: Option<Instant>,
    pub(super) fail_point: Option<FailPoint>,
    /// Listeners known to be contracts. Code does not go away, so a contract is asked once; an address without code
    /// is asked again each time (an EOA can gain code: an EIP-7702 delegation, a wallet deployed at a precomputed
    /// address), which costs one call per new grant.
    pub(super) wallets: HashSet<Address>,
}

impl Keeper {
    /// A keeper settling on `target` with `signer`'s account, journaling as `keeper_id`; the interval starts now.
    pub(crate) fn new(
        db: Db,
        chain: Chain,
        signer: Signer,
        target: Target,
        options: Options,
        keeper_id: String,
        metrics: Metrics,
    ) -> Self {
        Self {
            journal: Journal::new(
                &db,
                LeaseKey::new(target.chain_id, target.vault),
                signer.address(),
                keeper_id,
            ),
            db,
            chain,
            signer,
            target,
            fail_point: options.fail_point,
            options,
            metrics,
            last_batch_at: Instant::now(),
            due_since: None,
            wallets: HashSet::new(),
        }
    }

    pub(super) fn sender(&self) -> Address {
        self.signer.address()
    }

    /// Sends `attempt` and marks the batch broadcast.
    pub(super) async fn broadcast(
        &mut self,
        epoch: i64,
        batch: i64,
        attempt: &Attempt,
    ) -> Result<()> {
        match self.chain.send_raw(&attempt.raw).await? {
            Sent::Accepted => {}
            Sent::AlreadySubmitted(why) => {
                debug!(target: "beatstream::keeper", batch, hash = %attempt.hash, %why, "node says already submitted");
            }
        }
        if self.fail_point == Some(FailPoint::AfterBroadcast) {
            self.fail_point = None;
            return Err(Error::FailPoint(FailPoint::AfterBroadcast));
        }
        self.journal.mark_broadcast(epoch, batch, attempt.hash).await
    }

    /// Signs attempt `number` of a batch: a call to `to` with `input`, or a self-transfer.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn sign_attempt(
        &self,
        number: i32,
        kind: AttemptKind,
        nonce: u64,
        to: Address,
        input: Bytes,
        gas_limit: u64,
        (max_fee, priority): (u128, u128),
    ) -> Result<Attempt> {
        let signed = chain::sign(
            &self.signer,
            TxParams {
                chain_id: self.target.chain_id,
                nonce,
                to,
                input,
                gas_limit,
                max_fee_per_gas: max_fee,
                max_priority_fee_per_gas: priority,
            },
        )
        .await?;
        Ok(Attempt {
            hash: signed.hash,
            attempt: number,
            kind,
            max_fee,
            priority_fee: priority,
            raw: signed.raw,
            gas_limit,
            age: 0.0,
        })
    }

    pub(super) async fn fees(&self) -> Result<(u128, u128)> {
        let suggested = self.chain.fees().await?;
        let ceiling = self.options.max_fee_ceiling();
        if suggested.0 > ceiling {
            warn!(target: "beatstream::keeper", max_fee = suggested.0, ceiling, "suggested fee is above --keeper-max-fee-gwei; using the ceiling");
        }
        Ok(fees::capped(suggested, ceiling))
    }

    // ----- Health -----

    pub(super) async fn check_stall(&self) -> Result<()> {
        let stall_after = self.options.stall_secs as f64;
        let oldest_open = self.journal.oldest_open_age().await?;
        self.metrics.oldest_pending.set(oldest_open.unwrap_or(0.0) as i64);
        let stall = if let Some(age) = oldest_open.filter(|age| *age > stall_after) {
            Some(format!("a settlement transaction has been unconfirmed for {age:.0} s"))
        } else {
            self.due_since
                .map(|since| since.elapsed().as_secs_f64())
                .filter(|age| *age > stall_after)
                .map(|age| format!("settleable vouchers have waited {age:.0} s without a batch"))
        };
        self.metrics.set_stall(stall);
        Ok(())
    }
}

/// The calldata of a journaled signed transaction.
pub(super) fn decode_input(raw: &[u8]) -> Result<Bytes> {
    use alloy::{consensus::Transaction, eips::eip2718::Decodable2718};
    let envelope = alloy::consensus::TxEnvelope::decode_2718(&mut &raw[..])
        .map_err(|e| Error::Rpc(format!("undecodable journaled transaction: {e}")))?;
    Ok(envelope.input().clone())
}
