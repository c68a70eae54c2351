//! One keeper step: follow every open transaction of the journal to its end (`follow.rs`), then settle what is due
//! (`settle.rs`). This file holds the keeper's state and what both halves share: signing, broadcasting, fees.
//!
//! The journal is write-ahead (`db::journal`): a batch's items, nonce and signed transaction are committed before
//! anything is broadcast, so a crash at any point leaves either nothing sent or a journaled transaction the next step
//! finds, sends again if needed, and follows to its receipt. Nothing sent is ever unrecorded. `step/` is the I/O
//! around the decisions; the decisions themselves (what to batch, when, what fees) are `policy`.

mod follow;
mod settle;

use std::{collections::HashSet, time::Instant};

use alloy::{
    primitives::{Address, Bytes},
    signers::local::PrivateKeySigner,
};
use tracing::{debug, instrument, warn};

use crate::{
    Error, FailPoint, Metrics, Options, Result,
    chain::{self, Chain, Sent, TxParams},
    config::Target,
    db::{Attempt, AttemptKind, Db, Journal},
    policy::fees,
};

/// The active keeper's state between steps.
pub(crate) struct Keeper {
    db: Db,
    journal: Journal,
    chain: Chain,
    signer: PrivateKeySigner,
    target: Target,
    options: Options,
    metrics: Metrics,
    last_batch_at: Instant,
    /// Since when settleable value has been due without a batch taking it.
    due_since: Option<Instant>,
    fail_point: Option<FailPoint>,
    /// Listeners known to be contracts. Code does not go away, so a contract is asked once; an address without code
    /// is asked again each time (an EOA can gain code: an EIP-7702 delegation, a wallet deployed at a precomputed
    /// address), which costs one call per new grant.
    wallets: HashSet<Address>,
}

impl Keeper {
    /// A keeper settling on `target` with `signer`'s account, journaling as `keeper_id`; the interval starts now.
    pub(crate) fn new(
        db: Db,
        chain: Chain,
        signer: PrivateKeySigner,
        target: Target,
        options: Options,
        keeper_id: String,
        metrics: Metrics,
    ) -> Self {
        Self {
            journal: Journal::new(&db, target.chain_id, signer.address(), keeper_id),
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

    fn sender(&self) -> Address {
        self.signer.address()
    }

    /// One step as the leader of `epoch`. Its span, and the span of each batch within it, carry the epoch, so
    /// `RUST_LOG=beatstream::keeper=debug` shows which leadership did what.
    #[instrument(target = "beatstream::keeper", name = "step", skip_all, fields(epoch = epoch))]
    pub(crate) async fn step(&mut self, epoch: i64) -> Result<()> {
        let open = self.reconcile(epoch).await?;
        if open < self.options.max_pending {
            self.settle(epoch).await?;
        }
        self.check_stall().await
    }

    /// Sends `attempt` and marks the batch broadcast.
    async fn broadcast(&mut self, epoch: i64, batch: i64, attempt: &Attempt) -> Result<()> {
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
    fn sign_attempt(
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
        )?;
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

    async fn fees(&self) -> Result<(u128, u128)> {
        let suggested = self.chain.fees().await?;
        let ceiling = self.options.max_fee_ceiling();
        if suggested.0 > ceiling {
            warn!(target: "beatstream::keeper", max_fee = suggested.0, ceiling, "suggested fee is above --max-fee-gwei; using the ceiling");
        }
        Ok(fees::capped(suggested, ceiling))
    }

    // ----- Health -----

    async fn check_stall(&self) -> Result<()> {
        let stall_after = self.options.stall_secs as f64;
        let oldest_open = self.journal.oldest_open_age().await?;
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
fn decode_input(raw: &[u8]) -> Result<Bytes> {
    use alloy::{consensus::Transaction, eips::eip2718::Decodable2718};
    let envelope = alloy::consensus::TxEnvelope::decode_2718(&mut &raw[..])
        .map_err(|e| Error::Rpc(format!("undecodable journaled transaction: {e}")))?;
    Ok(envelope.input().clone())
}
