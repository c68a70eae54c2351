//! One keeper step: follow every open transaction of the journal to its end, then settle what is due.
//!
//! The journal is write-ahead (`db::journal`): a batch's items, nonce and signed transaction are committed before
//! anything is broadcast, so a crash at any point leaves either nothing sent or a journaled transaction the next step
//! finds, sends again if needed, and follows to its receipt. Nothing sent is ever unrecorded. This file is the I/O
//! around the decisions; the decisions themselves (what to batch, when, what fees) are `policy`.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    time::Instant,
};

use alloy::{
    primitives::{Address, Bytes, U256},
    rpc::types::TransactionReceipt,
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use beatstream_primitives::contracts::BeatStreamVault;
use tracing::{Span, debug, field, info, instrument, warn};

use crate::{
    Error, FailPoint, Metrics, Options, Result,
    book::Candidate,
    chain::{self, Chain, Sent, TxParams},
    config::Target,
    db::{
        Attempt, AttemptKind, BatchKind, BatchStatus, Db, Journal, Mined, NewBatch, OpenBatch,
        Outcome, SkipReason,
    },
    policy::{
        batch::{self, Policy, Triage, Trigger},
        fees,
    },
};

pub(crate) struct Keeper {
    pub(crate) db: Db,
    pub(crate) journal: Journal,
    pub(crate) chain: Chain,
    pub(crate) signer: PrivateKeySigner,
    pub(crate) target: Target,
    pub(crate) options: Options,
    pub(crate) metrics: Metrics,
    pub(crate) last_batch_at: Instant,
    /// Since when settleable value has been due without a batch taking it.
    pub(crate) due_since: Option<Instant>,
    pub(crate) fail_point: Option<FailPoint>,
    /// Listeners known to be contracts. Code does not go away, so a contract is asked once; an address without code
    /// is asked again each time (an EOA can gain code: an EIP-7702 delegation, a wallet deployed at a precomputed
    /// address), which costs one call per new grant.
    pub(crate) wallets: HashSet<Address>,
}

impl Keeper {
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

    // ----- Open transactions -----

    /// Follows every open batch: records receipts, confirms, rebroadcasts dropped or reorged transactions, bumps
    /// stuck ones, gives up nonces past the last attempt and fills nonce gaps. Returns how many settlement batches
    /// are still open.
    async fn reconcile(&mut self, epoch: i64) -> Result<usize> {
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
            warn!(target: "beatstream::keeper", batch = batch.id, max_fee = latest.max_fee, "stuck, but a replacement would pass --max-fee-gwei; waiting");
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
            )?
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
            )?
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
        if attempt.kind == AttemptKind::Settle && receipt.status() {
            let input = decode_input(&attempt.raw)?;
            let items = BeatStreamVault::settleBatchCall::abi_decode(&input)
                .map_err(|e| Error::Rpc(format!("undecodable journaled transaction: {e}")))?
                .items;
            let logs = receipt.inner.logs().iter().map(|l| &l.inner);
            for (item, outcome) in
                items.iter().zip(chain::outcomes(self.target.vault, &items, logs))
            {
                outcomes.push((chain::grant_id(&item.grant), item.payee, outcome));
            }
        }
        let settled = outcomes.iter().filter(|o| o.2 == Outcome::Settled).count();
        let not_reached = outcomes.iter().filter(|o| o.2 == Outcome::NotReached).count();
        let reverted = attempt.kind == AttemptKind::Settle && !receipt.status();
        if not_reached > 0 {
            warn!(target: "beatstream::keeper", batch = id, %hash, not_reached, "the vault cut the batch short (BatchCutShort); the vouchers it did not reach go into a later batch");
        }
        info!(target: "beatstream::keeper", batch = id, %hash, block, gas_used = receipt.gas_used, settled, reverted, "settlement mined");
        let mined = Mined { hash, block, gas_used: receipt.gas_used, outcomes };
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
        self.journal.record_confirmed(epoch, id, status).await?;
        if status == BatchStatus::Confirmed && batch.kind == BatchKind::Settle {
            let settled = latencies.len() as u64;
            self.metrics.batches_confirmed.inc();
            self.metrics.vouchers_settled.inc_by(settled);
            self.metrics.batch_size.observe(settled as f64);
            if let Some(per_voucher) = receipt.gas_used.checked_div(settled) {
                self.metrics.gas_per_voucher.set(per_voucher as i64);
            }
            for latency in latencies {
                self.metrics.settlement_latency.observe(latency.max(0.0));
            }
            self.metrics.last_settlement_time.set(beatstream_primitives::unix_now() as i64);
            info!(target: "beatstream::keeper", batch = id, hash = %attempt.hash, settled, gas_used = receipt.gas_used, "settlement confirmed");
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
        let attempt = self.sign_attempt(
            0,
            AttemptKind::Cancel,
            nonce,
            self.sender(),
            Bytes::new(),
            Chain::transfer_gas(),
            (max_fee, priority),
        )?;
        self.metrics.cancellations.inc();
        let batch =
            NewBatch { nonce, kind: BatchKind::Noop, urgent: false, items: &[], attempt: &attempt };
        let id = self.journal.insert_batch(epoch, batch).await?;
        Span::current().record("batch", id);
        self.broadcast(epoch, id, &attempt).await
    }

    // ----- New batches -----

    /// Settles what is due, if anything: plan, simulate, journal, broadcast. The span gets the batch's nonce and id
    /// once they are known.
    #[instrument(
        target = "beatstream::keeper",
        name = "batch",
        skip_all,
        fields(batch = field::Empty, nonce = field::Empty, epoch = epoch, kind = "settle")
    )]
    async fn settle(&mut self, epoch: i64) -> Result<()> {
        let book = self.db.candidates(self.target, self.options.urgent_window_secs).await?;
        let total: U256 = book.iter().map(|c| c.value).sum();
        self.metrics.unsettled_vouchers.set(book.len() as i64);
        self.metrics.unsettled_value.set(i64::try_from(total).unwrap_or(i64::MAX));
        if book.is_empty() {
            self.due_since = None;
            return Ok(());
        }
        // The fee is needed before planning only when the dust line depends on the gas price.
        let mut fees = None;
        if self.options.gas_token_price > 0 {
            fees = Some(self.fees().await?);
        }
        let policy = Policy::new(
            &self.options,
            self.last_batch_at.elapsed(),
            fees.map_or(0, |(max_fee, _)| max_fee),
        );
        let Some((trigger, mut chosen)) = batch::plan(book, &policy) else {
            self.due_since = None;
            return Ok(());
        };
        self.due_since.get_or_insert_with(Instant::now);
        // Wallet checks need their allowance within the budget: find the wallets, then fit the batch again.
        self.find_wallets(&mut chosen).await?;
        let chosen = batch::fit(chosen, &policy);

        let Some((items, gas)) = self.simulate(chosen).await? else {
            return Ok(());
        };
        let (max_fee, priority) = match fees {
            Some(fees) => fees,
            None => self.fees().await?,
        };
        let wallet_checks = batch::wallet_checks(&items);
        let gas_limit = batch::gas_limit(gas, wallet_checks, self.options.gas_budget);
        let nonce = self.next_nonce().await?;
        Span::current().record("nonce", nonce);
        let input: Bytes = BeatStreamVault::settleBatchCall {
            items: items.iter().map(|(_, item)| item.clone()).collect(),
        }
        .abi_encode()
        .into();
        let attempt = self.sign_attempt(
            0,
            AttemptKind::Settle,
            nonce,
            self.target.vault,
            input,
            gas_limit,
            (max_fee, priority),
        )?;
        let candidates: Vec<Candidate> = items.into_iter().map(|(c, _)| c).collect();
        let urgent = trigger == Trigger::Urgent;
        let batch = NewBatch {
            nonce,
            kind: BatchKind::Settle,
            urgent,
            items: &candidates,
            attempt: &attempt,
        };
        let id = self.journal.insert_batch(epoch, batch).await?;
        Span::current().record("batch", id);
        self.metrics.attempts.inc();
        let value: U256 = candidates.iter().map(|c| c.value).sum();
        info!(target: "beatstream::keeper", batch = id, nonce, vouchers = candidates.len(), %value, ?trigger, simulated_gas = gas, wallet_checks, gas_limit, hash = %attempt.hash, "settling");
        self.last_batch_at = Instant::now();
        self.due_since = None;
        if self.fail_point == Some(FailPoint::AfterJournal) {
            self.fail_point = None;
            return Err(Error::FailPoint(FailPoint::AfterJournal));
        }
        self.broadcast(epoch, id, &attempt).await
    }

    /// Runs the batch against the latest state and keeps only what the vault would settle. Vouchers it would skip
    /// are held (until a newer voucher or a retry time) so they never block the rest. Returns the items in order
    /// and the gas the simulation used, or `None` when nothing is left.
    async fn simulate(
        &mut self,
        mut chosen: Vec<Candidate>,
    ) -> Result<Option<(Vec<(Candidate, BeatStreamVault::SettlementItem)>, u64)>> {
        for _round in 0..4 {
            if chosen.is_empty() {
                return Ok(None);
            }
            let items = batch::order(&chosen);
            let calls: Vec<_> = items.iter().map(|(_, i)| i.clone()).collect();
            let (outcomes, gas) =
                self.chain.simulate(self.sender(), self.target.vault, &calls).await?;
            let Triage { keep, held, deferred } = batch::triage(&items, &outcomes);
            if deferred > 0 {
                info!(target: "beatstream::keeper", deferred, "the simulation ran short of gas; leaving vouchers for a later batch");
            }
            if held.is_empty() && keep.len() == items.len() {
                let wallet_checks = batch::wallet_checks(&items);
                if !batch::within_budget(gas, wallet_checks, self.options.gas_budget, items.len()) {
                    // The estimate per item was too low: drop the least valuable tenth and try again.
                    chosen = batch::shrink(chosen);
                    continue;
                }
                return Ok(Some((items, gas)));
            }
            self.hold(&held).await?;
            chosen = keep;
        }
        Ok(None)
    }

    /// Marks the chosen vouchers whose grant is not registered and whose listener is a contract (`eth_getCode`).
    async fn find_wallets(&mut self, chosen: &mut [Candidate]) -> Result<()> {
        let mut asked: HashMap<Address, bool> = HashMap::new();
        for c in chosen.iter_mut().filter(|c| !c.registered) {
            let listener = c.grant.listener;
            c.wallet = if self.wallets.contains(&listener) {
                true
            } else if let Some(&known) = asked.get(&listener) {
                known
            } else {
                let has_code = self.chain.has_code(listener).await?;
                asked.insert(listener, has_code);
                if has_code {
                    debug!(target: "beatstream::keeper", %listener, "listener is a contract; its grant gets the wallet-check allowance");
                    self.wallets.insert(listener);
                }
                has_code
            };
        }
        Ok(())
    }

    async fn hold(&self, held: &[(Candidate, SkipReason)]) -> Result<()> {
        for (c, reason) in held {
            warn!(target: "beatstream::keeper", grant = %c.grant_id, payee = %c.payee, cumulative = %c.cumulative, %reason, "the vault would skip this voucher; holding it");
            self.metrics.vouchers_held.inc();
            self.db.hold(c, *reason, batch::retry_secs(*reason)).await?;
        }
        Ok(())
    }

    async fn fees(&self) -> Result<(u128, u128)> {
        let suggested = self.chain.fees().await?;
        let ceiling = self.options.max_fee_ceiling();
        if suggested.0 > ceiling {
            warn!(target: "beatstream::keeper", max_fee = suggested.0, ceiling, "suggested fee is above --max-fee-gwei; using the ceiling");
        }
        Ok(fees::capped(suggested, ceiling))
    }

    /// The next nonce: past everything the chain has (included or pooled without a gap) and everything journaled.
    async fn next_nonce(&self) -> Result<u64> {
        let pending = self.chain.nonce_pending(self.sender()).await?;
        let journaled = self.journal.highest_open_nonce().await?;
        Ok(pending.max(journaled.map_or(0, |n| n + 1)))
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
