//! Following the journal's open transactions: receipts and their outcomes, confirmations, reorgs, dropped and
//! stuck transactions (fee bumps, then a self-transfer that frees the nonce), nonces used by others, and nonce gaps.

use std::collections::BTreeSet;

use alloy::{primitives::Bytes, rpc::types::TransactionReceipt};
use tracing::{Span, field, info, instrument, warn};

use super::state::{Keeper, decode_input};
use crate::{
    Result,
    chain::{self, Chain},
    db::{Attempt, AttemptKind, BatchKind, BatchStatus, Mined, NewBatch, OpenBatch, Outcome},
    policy::fees,
};

impl Keeper {
    /// Follows every open batch: records receipts, confirms, rebroadcasts dropped or reorged transactions, bumps
    /// stuck ones, gives up nonces past the last attempt and fills nonce gaps. Returns how many settlement batches
    /// are still open.
    pub(super) async fn reconcile(&mut self, epoch: i64) -> Result<usize> {
        let batches = self.journal.open_batches().await?;
        if batches.is_empty() {
            self.metrics.pending_transactions.set(0);
            return Ok(0);
        }
        let head = self.chain.head().await?;
        let chain_nonce = self.chain.nonce_latest(self.sender()).await?;
        for batch in &batches {
            self.follow(epoch, batch, head, chain_nonce).await?;
        }

        // A nonce below our lowest open one that nothing of ours will ever use blocks every later transaction: fill
        // it with a self-transfer.
        let still_open = self.journal.open_batches().await?;
        let open: BTreeSet<u64> = still_open.iter().map(|b| b.nonce).collect();
        let mut filled = 0;
        if let Some(&lowest) = open.first() {
            let chain_nonce = self.chain.nonce_pending(self.sender()).await?;
            for nonce in chain_nonce..lowest {
                warn!(target: "beatstream::keeper", nonce, "nonce gap below an open transaction; filling it");
                self.fill_gap(epoch, nonce).await?;
                filled += 1;
            }
        }
        self.metrics.pending_transactions.set((still_open.len() + filled) as i64);
        Ok(still_open.iter().filter(|b| b.kind == BatchKind::Settle).count())
    }

    /// Follows one open batch a step further (see [`Keeper::reconcile`]).
    #[instrument(
        target = "beatstream::keeper",
        name = "batch",
        skip_all,
        fields(batch = batch.id, nonce = batch.nonce, epoch = epoch, status = ?batch.status)
    )]
    async fn follow(
        &mut self,
        epoch: i64,
        batch: &OpenBatch,
        head: u64,
        chain_nonce: u64,
    ) -> Result<()> {
        let attempts = self.journal.attempts(batch.id).await?;
        // The newest attempt first: replacements are the likeliest to be mined.
        let mut mined = None;
        for attempt in attempts.iter().rev() {
            if let Some(receipt) = self.chain.receipt(attempt.hash).await?
                && receipt.block_number.is_some()
            {
                mined = Some((attempt, receipt));
                break;
            }
        }
        if let Some((attempt, receipt)) = mined {
            let block = receipt.block_number.expect("checked");
            if batch.status != BatchStatus::Mined || batch.mined_hash != Some(attempt.hash) {
                self.record_mined(epoch, batch, attempt, &receipt).await?;
            }
            if head >= block + self.options.confirmations {
                self.record_confirmed(epoch, batch, attempt, &receipt).await?;
            }
            return Ok(());
        }

        if batch.status == BatchStatus::Mined {
            warn!(target: "beatstream::keeper", batch = batch.id, nonce = batch.nonce, "settlement removed by a reorg; sending it again");
            self.metrics.reorgs.inc();
            self.journal.record_reorged(epoch, batch.id).await?;
        }

        if chain_nonce > batch.nonce {
            // The nonce is used and no attempt of ours has a receipt: another transaction took it.
            warn!(target: "beatstream::keeper", batch = batch.id, nonce = batch.nonce, "nonce used by another transaction; releasing the batch's vouchers");
            self.journal
                .record_ended(
                    epoch,
                    batch.id,
                    BatchStatus::Cancelled,
                    "nonce used by another transaction",
                )
                .await?;
            return Ok(());
        }

        let Some(latest) = attempts.last() else {
            return Ok(());
        };
        if batch.status == BatchStatus::Pending {
            // Journaled but maybe never sent (a crash, or the node refused): send it now.
            self.broadcast(epoch, batch.id, latest).await?;
            return Ok(());
        }
        if !self.chain.knows(latest.hash).await? {
            info!(target: "beatstream::keeper", batch = batch.id, hash = %latest.hash, "transaction dropped by the node; sending it again");
            self.metrics.rebroadcasts.inc();
            self.broadcast(epoch, batch.id, latest).await?;
            return Ok(());
        }
        if latest.age >= self.options.bump_after_secs as f64 {
            self.replace(epoch, batch, &attempts).await?;
        }
        Ok(())
    }

    /// Replaces a stuck transaction with raised fees; past the last attempt, with a self-transfer that frees the
    /// nonce.
    async fn replace(&mut self, epoch: i64, batch: &OpenBatch, attempts: &[Attempt]) -> Result<()> {
        let latest = attempts.last().expect("a batch has an attempt");
        let suggested = self.chain.fees().await?;
        let Some((max_fee, priority)) = fees::bumped_fees(
            (latest.max_fee, latest.priority_fee),
            suggested,
            self.options.bump_percent,
            self.options.max_fee_ceiling(),
        ) else {
            warn!(target: "beatstream::keeper", batch = batch.id, max_fee = latest.max_fee, "stuck, but a replacement would pass --keeper-max-fee-gwei; waiting");
            return Ok(());
        };
        let settle_attempts = attempts.iter().filter(|a| a.kind == AttemptKind::Settle).count();
        let kind =
            fees::replacement(batch.kind, latest.kind, settle_attempts, self.options.max_attempts);
        let cancel = kind == AttemptKind::Cancel;
        let attempt = if cancel {
            self.sign_attempt(
                latest.attempt + 1,
                AttemptKind::Cancel,
                batch.nonce,
                self.sender(),
                Bytes::new(),
                Chain::transfer_gas(),
                (max_fee, priority),
            )
            .await?
        } else {
            let first = attempts.iter().find(|a| a.kind == AttemptKind::Settle).unwrap_or(latest);
            let input = decode_input(&first.raw)?;
            self.sign_attempt(
                latest.attempt + 1,
                AttemptKind::Settle,
                batch.nonce,
                self.target.vault,
                input,
                first.gas_limit,
                (max_fee, priority),
            )
            .await?
        };
        if cancel && latest.kind != AttemptKind::Cancel && batch.kind != BatchKind::Noop {
            warn!(target: "beatstream::keeper", batch = batch.id, nonce = batch.nonce, "last attempt stuck; freeing the nonce with a self-transfer");
            self.metrics.cancellations.inc();
        } else {
            info!(target: "beatstream::keeper", batch = batch.id, nonce = batch.nonce, attempt = attempt.attempt, max_fee, priority, "replacing a stuck transaction with raised fees");
        }
        self.metrics.bumps.inc();
        self.metrics.attempts.inc();
        self.journal.insert_attempt(epoch, batch.id, &attempt).await?;
        self.broadcast(epoch, batch.id, &attempt).await
    }

    async fn record_mined(
        &mut self,
        epoch: i64,
        batch: &OpenBatch,
        attempt: &Attempt,
        receipt: &TransactionReceipt,
    ) -> Result<()> {
        let block = receipt.block_number.expect("mined");
        let hash = attempt.hash;
        let id = batch.id;
        // Each item's outcome from the vault's events, in item order. Only `settled` counts as settled: a skipped,
        // not reached or unmatched voucher is a candidate again once the batch is confirmed, and the next simulation
        // decides whether to hold it.
        let mut outcomes = Vec::new();
        let mut tip_outcomes = Vec::new();
        if attempt.kind == AttemptKind::Settle && receipt.status() {
            let input = decode_input(&attempt.raw)?;
            let (items, tips) = chain::decode_settle_input(&input)?;
            let logs = || receipt.inner.logs().iter().map(|l| &l.inner);
            for (item, outcome) in
                items.iter().zip(chain::outcomes(self.target.vault, &items, logs()))
            {
                outcomes.push((chain::grant_id(&item.grant), item.payee, outcome));
            }
            for (tip, outcome) in
                tips.iter().zip(chain::tip_outcomes(self.target.vault, &tips, logs()))
            {
                tip_outcomes.push((chain::grant_id(&tip.grant), tip.tipId, outcome));
            }
        }
        let settled = outcomes.iter().filter(|o| o.2 == Outcome::Settled).count();
        let not_reached = outcomes.iter().filter(|o| o.2 == Outcome::NotReached).count();
        let reverted = attempt.kind == AttemptKind::Settle && !receipt.status();
        if not_reached > 0 {
            warn!(target: "beatstream::keeper", batch = id, %hash, not_reached, "the vault cut the batch short (BatchCutShort); the vouchers it did not reach go into a later batch");
        }
        let tips_settled = tip_outcomes.iter().filter(|o| o.2 == Outcome::Settled).count();
        let tips_not_reached = tip_outcomes.iter().filter(|o| o.2 == Outcome::NotReached).count();
        if tips_not_reached > 0 {
            warn!(target: "beatstream::keeper", batch = id, %hash, tips_not_reached, "the vault cut the tips short (TipsCutShort); the tips it did not reach go into a later batch");
        }
        info!(target: "beatstream::keeper", batch = id, %hash, block, gas_used = receipt.gas_used, settled, tips_settled, reverted, "settlement mined");
        let mined = Mined { hash, block, gas_used: receipt.gas_used, outcomes, tip_outcomes };
        self.journal.record_mined(epoch, id, mined).await
    }

    async fn record_confirmed(
        &mut self,
        epoch: i64,
        batch: &OpenBatch,
        attempt: &Attempt,
        receipt: &TransactionReceipt,
    ) -> Result<()> {
        let status = match (attempt.kind, batch.kind, receipt.status()) {
            (AttemptKind::Cancel, BatchKind::Settle, _) => BatchStatus::Cancelled,
            (_, _, false) => BatchStatus::Failed,
            _ => BatchStatus::Confirmed,
        };
        let id = batch.id;
        let latencies = self.journal.settled_latencies(id).await?;
        let tips_settled = self.journal.settled_tips(id).await?;
        self.journal.record_confirmed(epoch, id, status).await?;
        if status == BatchStatus::Confirmed && batch.kind == BatchKind::Settle {
            let settled = latencies.len() as u64;
            self.metrics.batches_confirmed.inc();
            self.metrics.vouchers_settled.inc_by(settled);
            self.metrics.tips_settled.inc_by(tips_settled);
            self.metrics.batch_size.observe(settled as f64);
            if let Some(per_voucher) = receipt.gas_used.checked_div(settled) {
                self.metrics.gas_per_voucher.set(per_voucher as i64);
            }
            for latency in latencies {
                self.metrics.settlement_latency.observe(latency.max(0.0));
            }
            self.metrics.last_settlement_time.set(beatstream_primitives::unix_now() as i64);
            info!(target: "beatstream::keeper", batch = id, hash = %attempt.hash, settled, tips_settled, gas_used = receipt.gas_used, "settlement confirmed");
        } else if status != BatchStatus::Confirmed {
            warn!(target: "beatstream::keeper", batch = id, ?status, "batch ended without settling");
        }
        Ok(())
    }

    #[instrument(
        target = "beatstream::keeper",
        name = "batch",
        skip_all,
        fields(batch = field::Empty, nonce = nonce, epoch = epoch, kind = "noop")
    )]
    async fn fill_gap(&mut self, epoch: i64, nonce: u64) -> Result<()> {
        let (max_fee, priority) = self.fees().await?;
        let attempt = self
            .sign_attempt(
                0,
                AttemptKind::Cancel,
                nonce,
                self.sender(),
                Bytes::new(),
                Chain::transfer_gas(),
                (max_fee, priority),
            )
            .await?;
        self.metrics.cancellations.inc();
        let batch = NewBatch {
            nonce,
            kind: BatchKind::Noop,
            urgent: false,
            items: &[],
            tips: &[],
            attempt: &attempt,
        };
        let id = self.journal.insert_batch(epoch, batch).await?;
        Span::current().record("batch", id);
        self.broadcast(epoch, id, &attempt).await
    }
}
