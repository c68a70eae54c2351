//! One keeper step: follow every open transaction of the journal to its end, then settle what is due.
//!
//! The journal is write-ahead: a batch's items, nonce and signed transaction are committed before anything is
//! broadcast, so a crash at any point leaves either nothing sent or a journaled transaction the next step finds,
//! sends again if needed, and follows to its receipt. Nothing sent is ever unrecorded.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use beatstream_primitives::contracts::BeatStreamVault;
use sqlx::PgPool;
use tracing::{debug, info, warn};

use crate::{
    Error, FailPoint, Metrics, Options, Result,
    book::{self, Candidate, Policy},
    chain::{
        self, Chain, Outcome, SKIP_CAP_EXCEEDED, SKIP_GRANT_EXPIRED, SKIP_INSUFFICIENT_FUNDS,
        SKIP_INSUFFICIENT_GAS, SKIP_INVALID_GRANT_SIGNATURE, SKIP_STALE, Sent, TxParams,
    },
    config::Target,
};

/// An open batch of the journal.
#[derive(Debug)]
struct OpenBatch {
    id: i64,
    nonce: u64,
    status: String,
    kind: String,
    mined_hash: Option<B256>,
}

/// One signed transaction of a batch.
#[derive(Clone, Debug)]
struct Attempt {
    hash: B256,
    attempt: i32,
    kind: String,
    max_fee: u128,
    priority_fee: u128,
    raw: Vec<u8>,
    gas_limit: u64,
    /// Seconds since it was last sent (or signed, if never sent).
    age: f64,
}

pub(crate) struct Keeper {
    pub(crate) pool: PgPool,
    pub(crate) chain: Chain,
    pub(crate) signer: PrivateKeySigner,
    pub(crate) target: Target,
    pub(crate) options: Options,
    pub(crate) keeper_id: String,
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

    /// One step as the leader of `epoch`.
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
        let batches = self.open_batches().await?;
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
        let still_open = self.open_batches().await?;
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
        Ok(still_open.iter().filter(|b| b.kind == "settle").count())
    }

    async fn open_batches(&self) -> Result<Vec<OpenBatch>> {
        type Row = (i64, i64, String, String, Option<Vec<u8>>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, nonce, status, kind, confirmed_hash FROM keeper_batches
             WHERE chain_id = $1 AND sender = $2 AND status IN ('pending', 'broadcast', 'mined')
             ORDER BY nonce",
        )
        .bind(self.target.chain_id as i64)
        .bind(self.sender().as_slice())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, nonce, status, kind, hash)| OpenBatch {
                id,
                nonce: nonce as u64,
                status,
                kind,
                mined_hash: hash.map(|h| B256::from_slice(&h)),
            })
            .collect())
    }

    async fn attempts(&self, batch: i64) -> Result<Vec<Attempt>> {
        type Row = (Vec<u8>, i32, String, String, String, Vec<u8>, Option<i64>, f64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT hash, attempt, kind, max_fee_per_gas::text, max_priority_fee_per_gas::text, raw, gas_limit,
                    extract(epoch FROM now() - coalesce(broadcast_at, created_at))::float8
             FROM keeper_attempts WHERE batch_id = $1 ORDER BY attempt",
        )
        .bind(batch)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(hash, attempt, kind, max_fee, prio, raw, gas_limit, age)| Attempt {
                hash: B256::from_slice(&hash),
                attempt,
                kind,
                max_fee: max_fee.parse().unwrap_or_default(),
                priority_fee: prio.parse().unwrap_or_default(),
                raw,
                gas_limit: gas_limit.unwrap_or_default() as u64,
                age,
            })
            .collect())
    }

    async fn follow(
        &mut self,
        epoch: i64,
        batch: &OpenBatch,
        head: u64,
        chain_nonce: u64,
    ) -> Result<()> {
        let attempts = self.attempts(batch.id).await?;
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
            if batch.status != "mined" || batch.mined_hash != Some(attempt.hash) {
                self.record_mined(epoch, batch, attempt, &receipt).await?;
            }
            if head >= block + self.options.confirmations {
                self.record_confirmed(epoch, batch, attempt, &receipt).await?;
            }
            return Ok(());
        }

        if batch.status == "mined" {
            warn!(target: "beatstream::keeper", batch = batch.id, nonce = batch.nonce, "settlement removed by a reorg; sending it again");
            self.metrics.reorgs.inc();
            let id = batch.id;
            self.write(epoch, |tx| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE keeper_batches SET status = 'broadcast', reorgs = reorgs + 1, confirmed_hash = NULL,
                                confirmed_block = NULL, gas_used = NULL, settled_count = NULL, mined_at = NULL,
                                updated_at = now()
                         WHERE id = $1",
                    )
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
                    sqlx::query("UPDATE keeper_batch_items SET outcome = NULL WHERE batch_id = $1")
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                    Ok(())
                })
            })
            .await?;
        }

        if chain_nonce > batch.nonce {
            // The nonce is used and no attempt of ours has a receipt: another transaction took it.
            warn!(target: "beatstream::keeper", batch = batch.id, nonce = batch.nonce, "nonce used by another transaction; releasing the batch's vouchers");
            self.end_batch(epoch, batch.id, "cancelled", Some("nonce used by another transaction"))
                .await?;
            return Ok(());
        }

        let Some(latest) = attempts.last() else {
            return Ok(());
        };
        if batch.status == "pending" {
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
        let hash = attempt.hash;
        self.write(epoch, |tx| {
            Box::pin(async move {
                sqlx::query("UPDATE keeper_attempts SET broadcast_at = now() WHERE hash = $1")
                    .bind(hash.as_slice())
                    .execute(&mut **tx)
                    .await?;
                sqlx::query(
                    "UPDATE keeper_batches SET status = 'broadcast', updated_at = now()
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(batch)
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Replaces a stuck transaction with raised fees; past the last attempt, with a self-transfer that frees the
    /// nonce.
    async fn replace(&mut self, epoch: i64, batch: &OpenBatch, attempts: &[Attempt]) -> Result<()> {
        let latest = attempts.last().expect("a batch has an attempt");
        let suggested = self.chain.fees().await?;
        let Some((max_fee, priority)) = chain::bumped_fees(
            (latest.max_fee, latest.priority_fee),
            suggested,
            self.options.bump_percent,
            self.options.max_fee_ceiling(),
        ) else {
            warn!(target: "beatstream::keeper", batch = batch.id, max_fee = latest.max_fee, "stuck, but a replacement would pass --max-fee-gwei; waiting");
            return Ok(());
        };
        let settle_attempts = attempts.iter().filter(|a| a.kind == "settle").count();
        let cancel = batch.kind == "noop"
            || latest.kind == "cancel"
            || settle_attempts >= self.options.max_attempts as usize;
        let kind = if cancel { "cancel" } else { "settle" };
        let attempt = if cancel {
            self.sign_attempt(
                latest.attempt + 1,
                kind,
                batch.nonce,
                self.sender(),
                Bytes::new(),
                Chain::transfer_gas(),
                (max_fee, priority),
            )?
        } else {
            let first = attempts.iter().find(|a| a.kind == "settle").unwrap_or(latest);
            let input = decode_input(&first.raw)?;
            self.sign_attempt(
                latest.attempt + 1,
                kind,
                batch.nonce,
                self.target.vault,
                input,
                first.gas_limit,
                (max_fee, priority),
            )?
        };
        if cancel && latest.kind != "cancel" && batch.kind != "noop" {
            warn!(target: "beatstream::keeper", batch = batch.id, nonce = batch.nonce, "last attempt stuck; freeing the nonce with a self-transfer");
            self.metrics.cancellations.inc();
        } else {
            info!(target: "beatstream::keeper", batch = batch.id, nonce = batch.nonce, attempt = attempt.attempt, max_fee, priority, "replacing a stuck transaction with raised fees");
        }
        self.metrics.bumps.inc();
        self.insert_attempt(epoch, batch.id, &attempt).await?;
        self.broadcast(epoch, batch.id, &attempt).await
    }

    /// Signs attempt `number` of a batch: a call to `to` with `input`, or a self-transfer.
    #[allow(clippy::too_many_arguments)]
    fn sign_attempt(
        &self,
        number: i32,
        kind: &str,
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
            kind: kind.into(),
            max_fee,
            priority_fee: priority,
            raw: signed.raw,
            gas_limit,
            age: 0.0,
        })
    }

    async fn insert_attempt(&self, epoch: i64, batch: i64, attempt: &Attempt) -> Result<()> {
        self.metrics.attempts.inc();
        let attempt = attempt.clone();
        self.write(epoch, |tx| Box::pin(async move { store_attempt(tx, batch, &attempt).await }))
            .await
    }

    async fn record_mined(
        &mut self,
        epoch: i64,
        batch: &OpenBatch,
        attempt: &Attempt,
        receipt: &alloy::rpc::types::TransactionReceipt,
    ) -> Result<()> {
        let block = receipt.block_number.expect("mined") as i64;
        let gas_used = receipt.gas_used as i64;
        let hash = attempt.hash;
        let id = batch.id;
        // Each item's outcome from the vault's events, in item order.
        let mut outcomes: Vec<(Vec<u8>, Vec<u8>, String)> = Vec::new();
        if attempt.kind == "settle" && receipt.status() {
            let input = decode_input(&attempt.raw)?;
            let items = BeatStreamVault::settleBatchCall::abi_decode(&input)
                .map_err(|e| Error::Rpc(format!("undecodable journaled transaction: {e}")))?
                .items;
            let logs = receipt.inner.logs().iter().map(|l| &l.inner);
            for (item, outcome) in
                items.iter().zip(chain::outcomes(self.target.vault, &items, logs))
            {
                let grant_id = chain::grant_id(&item.grant);
                // Only `settled` counts as settled: a skipped, not reached or unmatched voucher is a candidate
                // again once the batch is confirmed, and the next simulation decides whether to hold it.
                let outcome = match outcome {
                    Outcome::Settled => "settled".to_owned(),
                    Outcome::Skipped(r) => format!("skipped:{}", chain::skip_reason(r)),
                    Outcome::NotReached => "not_reached".to_owned(),
                    Outcome::Unmatched => "unmatched".to_owned(),
                };
                outcomes.push((grant_id.to_vec(), item.payee.to_vec(), outcome));
            }
        }
        let settled = outcomes.iter().filter(|o| o.2 == "settled").count() as i32;
        let not_reached = outcomes.iter().filter(|o| o.2 == "not_reached").count();
        let reverted = attempt.kind == "settle" && !receipt.status();
        if not_reached > 0 {
            warn!(target: "beatstream::keeper", batch = id, %hash, not_reached, "the vault cut the batch short (BatchCutShort); the vouchers it did not reach go into a later batch");
        }
        info!(target: "beatstream::keeper", batch = id, %hash, block, gas_used, settled, reverted, "settlement mined");
        self.write(epoch, |tx| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE keeper_batches SET status = 'mined', confirmed_hash = $2, confirmed_block = $3,
                            gas_used = $4, settled_count = $5, mined_at = now(), updated_at = now()
                     WHERE id = $1",
                )
                .bind(id)
                .bind(hash.as_slice())
                .bind(block)
                .bind(gas_used)
                .bind(settled)
                .execute(&mut **tx)
                .await?;
                let (grants, payees, results): (Vec<_>, Vec<_>, Vec<_>) = outcomes.into_iter().fold(
                    (Vec::new(), Vec::new(), Vec::new()),
                    |(mut g, mut p, mut r), (a, b, c)| {
                        g.push(a);
                        p.push(b);
                        r.push(c);
                        (g, p, r)
                    },
                );
                sqlx::query(
                    "UPDATE keeper_batch_items i SET outcome = o.outcome
                     FROM UNNEST($2::bytea[], $3::bytea[], $4::text[]) AS o (grant_id, payee, outcome)
                     WHERE i.batch_id = $1 AND i.grant_id = o.grant_id AND i.payee = o.payee",
                )
                .bind(id)
                .bind(grants)
                .bind(payees)
                .bind(results)
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn record_confirmed(
        &mut self,
        epoch: i64,
        batch: &OpenBatch,
        attempt: &Attempt,
        receipt: &alloy::rpc::types::TransactionReceipt,
    ) -> Result<()> {
        let status = match (attempt.kind.as_str(), batch.kind.as_str(), receipt.status()) {
            ("cancel", "settle", _) => "cancelled",
            (_, _, false) => "failed",
            _ => "confirmed",
        };
        let id = batch.id;
        let latencies: Vec<f64> = sqlx::query_scalar(
            "SELECT extract(epoch FROM now() - voucher_at)::float8 FROM keeper_batch_items
             WHERE batch_id = $1 AND outcome = 'settled'",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        self.write(epoch, |tx| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE keeper_batches SET status = $2, confirmed_at = now(), updated_at = now(),
                            error = CASE WHEN $2 = 'failed' THEN 'settleBatch reverted' ELSE error END
                     WHERE id = $1",
                )
                .bind(id)
                .bind(status)
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await?;
        if status == "confirmed" && batch.kind == "settle" {
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
            self.metrics.last_settlement_time.set(book::unix_now() as i64);
            info!(target: "beatstream::keeper", batch = id, hash = %attempt.hash, settled, gas_used = receipt.gas_used, "settlement confirmed");
        } else if status != "confirmed" {
            warn!(target: "beatstream::keeper", batch = id, status, "batch ended without settling");
        }
        Ok(())
    }

    /// Closes a batch that will never be mined; its vouchers become claimable again.
    async fn end_batch(
        &self,
        epoch: i64,
        id: i64,
        status: &'static str,
        why: Option<&'static str>,
    ) -> Result<()> {
        self.write(epoch, |tx| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE keeper_batches SET status = $2, error = $3, updated_at = now() WHERE id = $1",
                )
                .bind(id)
                .bind(status)
                .bind(why)
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn fill_gap(&mut self, epoch: i64, nonce: u64) -> Result<()> {
        let (max_fee, priority) = self.fees().await?;
        let attempt = self.sign_attempt(
            0,
            "cancel",
            nonce,
            self.sender(),
            Bytes::new(),
            Chain::transfer_gas(),
            (max_fee, priority),
        )?;
        self.metrics.cancellations.inc();
        let id = self.journal_batch(epoch, nonce, "noop", false, &[], &attempt).await?;
        self.broadcast(epoch, id, &attempt).await
    }

    // ----- New batches -----

    async fn settle(&mut self, epoch: i64) -> Result<()> {
        let book = book::load(&self.pool, self.target, self.options.urgent_window_secs).await?;
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
        let policy = Policy {
            payee_threshold: U256::from(self.options.payee_threshold),
            book_threshold: U256::from(self.options.book_threshold),
            interval_due: self.last_batch_at.elapsed()
                >= Duration::from_secs(self.options.max_interval_secs),
            dust: self.dust(fees.map_or(0, |(max_fee, _)| max_fee)),
            gas_budget: self.options.gas_budget,
            max_items: self.options.max_items,
        };
        let Some((trigger, mut chosen)) = book::plan(book, &policy) else {
            self.due_since = None;
            return Ok(());
        };
        self.due_since.get_or_insert_with(Instant::now);
        // Wallet checks need their allowance within the budget: find the wallets, then fit the batch again.
        self.find_wallets(&mut chosen).await?;
        let chosen = book::fit(chosen, &policy);

        let Some((items, gas)) = self.simulate(chosen).await? else {
            return Ok(());
        };
        let (max_fee, priority) = match fees {
            Some(fees) => fees,
            None => self.fees().await?,
        };
        let wallet_checks = wallet_checks(&items);
        let gas_limit = book::gas_limit(gas, wallet_checks, self.options.gas_budget);
        let nonce = self.next_nonce().await?;
        let input: Bytes = BeatStreamVault::settleBatchCall {
            items: items.iter().map(|(_, item)| item.clone()).collect(),
        }
        .abi_encode()
        .into();
        let attempt = self.sign_attempt(
            0,
            "settle",
            nonce,
            self.target.vault,
            input,
            gas_limit,
            (max_fee, priority),
        )?;
        let candidates: Vec<Candidate> = items.into_iter().map(|(c, _)| c).collect();
        let urgent = trigger == book::Trigger::Urgent;
        let id = self.journal_batch(epoch, nonce, "settle", urgent, &candidates, &attempt).await?;
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
            let items = book::order(&chosen);
            let calls: Vec<_> = items.iter().map(|(_, i)| i.clone()).collect();
            let (outcomes, gas) =
                self.chain.simulate(self.sender(), self.target.vault, &calls).await?;
            let mut keep = Vec::new();
            let mut held = Vec::new();
            let mut deferred = 0;
            for ((candidate, item), outcome) in items.iter().zip(&outcomes) {
                match outcome {
                    Outcome::Settled => keep.push(candidate.clone()),
                    // Sent without the grant signature because an earlier item of its grant was to register the
                    // grant and was skipped: try again with it.
                    Outcome::Skipped(SKIP_INVALID_GRANT_SIGNATURE)
                        if item.grantSignature.is_empty() =>
                    {
                        let mut c = candidate.clone();
                        c.registered = false;
                        keep.push(c);
                    }
                    // The batch ran short of gas, which says nothing about the voucher: leave it out of this batch,
                    // unheld, for a later one.
                    Outcome::Skipped(SKIP_INSUFFICIENT_GAS) | Outcome::NotReached => deferred += 1,
                    Outcome::Skipped(reason) => held.push((candidate.clone(), *reason)),
                    // The logs do not say what the vault did with it: held as `unknown`, like a reason this
                    // keeper does not know.
                    Outcome::Unmatched => held.push((candidate.clone(), u8::MAX)),
                }
            }
            if deferred > 0 {
                info!(target: "beatstream::keeper", deferred, "the simulation ran short of gas; leaving vouchers for a later batch");
            }
            if held.is_empty() && keep.len() == items.len() {
                let allowance = wallet_checks(&items) * book::WALLET_CHECK_GAS;
                if gas + allowance > self.options.gas_budget && items.len() > 1 {
                    // The estimate per item was too low: drop the least valuable tenth and try again.
                    let mut sorted = chosen.clone();
                    sorted.sort_by_key(|c| std::cmp::Reverse(c.value));
                    sorted.truncate(items.len() - items.len().div_ceil(10));
                    chosen = sorted;
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

    async fn hold(&self, held: &[(Candidate, u8)]) -> Result<()> {
        if held.is_empty() {
            return Ok(());
        }
        for (c, reason) in held {
            let retry_secs = retry_secs(*reason);
            warn!(target: "beatstream::keeper", grant = %c.grant_id, payee = %c.payee, cumulative = %c.cumulative, reason = chain::skip_reason(*reason), "the vault would skip this voucher; holding it");
            self.metrics.vouchers_held.inc();
            sqlx::query(
                "INSERT INTO keeper_holds (grant_id, payee, cumulative, reason, retry_at)
                 VALUES ($1, $2, $3::numeric, $4, now() + make_interval(secs => $5))
                 ON CONFLICT (grant_id, payee) DO UPDATE
                    SET cumulative = EXCLUDED.cumulative, reason = EXCLUDED.reason, retry_at = EXCLUDED.retry_at,
                        created_at = now()",
            )
            .bind(c.grant_id.as_slice())
            .bind(c.payee.as_slice())
            .bind(c.cumulative.to_string())
            .bind(chain::skip_reason(*reason))
            .bind(retry_secs)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// The value under which a voucher is not worth its gas.
    fn dust(&self, max_fee: u128) -> U256 {
        let floor = U256::from(self.options.min_item_value);
        if self.options.gas_token_price == 0 {
            return floor;
        }
        // gas * wei/gas * (token units per 1e18 wei) / 1e18
        let gas_cost =
            U256::from(35_000u64) * U256::from(max_fee) * U256::from(self.options.gas_token_price)
                / U256::from(10u64).pow(U256::from(18u64));
        floor.max(gas_cost)
    }

    async fn fees(&self) -> Result<(u128, u128)> {
        let (max_fee, priority) = self.chain.fees().await?;
        let ceiling = self.options.max_fee_ceiling();
        if max_fee > ceiling {
            warn!(target: "beatstream::keeper", max_fee, ceiling, "suggested fee is above --max-fee-gwei; using the ceiling");
        }
        Ok((max_fee.min(ceiling), priority.min(ceiling)))
    }

    /// The next nonce: past everything the chain has (included or pooled without a gap) and everything journaled.
    async fn next_nonce(&self) -> Result<u64> {
        let pending = self.chain.nonce_pending(self.sender()).await?;
        let journaled: Option<i64> = sqlx::query_scalar(
            "SELECT max(nonce) FROM keeper_batches
             WHERE chain_id = $1 AND sender = $2 AND status IN ('pending', 'broadcast', 'mined')",
        )
        .bind(self.target.chain_id as i64)
        .bind(self.sender().as_slice())
        .fetch_one(&self.pool)
        .await?;
        Ok(pending.max(journaled.map_or(0, |n| n as u64 + 1)))
    }

    /// Journals a batch, its items and its first signed transaction in one transaction, fenced by the lease epoch.
    async fn journal_batch(
        &self,
        epoch: i64,
        nonce: u64,
        kind: &'static str,
        urgent: bool,
        items: &[Candidate],
        attempt: &Attempt,
    ) -> Result<i64> {
        let chain_id = self.target.chain_id as i64;
        let sender = self.sender();
        let keeper_id = self.keeper_id.clone();
        let gas_limit = attempt.gas_limit as i64;
        let grants: Vec<Vec<u8>> = items.iter().map(|c| c.grant_id.to_vec()).collect();
        let payees: Vec<Vec<u8>> = items.iter().map(|c| c.payee.to_vec()).collect();
        let cumulatives: Vec<String> = items.iter().map(|c| c.cumulative.to_string()).collect();
        let listeners: Vec<Vec<u8>> = items.iter().map(|c| c.grant.listener.to_vec()).collect();
        let values: Vec<String> = items.iter().map(|c| c.value.to_string()).collect();
        let voucher_at: Vec<f64> = items.iter().map(|c| c.voucher_at).collect();
        let attempt = attempt.clone();
        self.write(epoch, |tx| {
            Box::pin(async move {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO keeper_batches (chain_id, sender, nonce, epoch, status, gas_limit, kind, keeper_id,
                                                 urgent)
                     VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8) RETURNING id",
                )
                .bind(chain_id)
                .bind(sender.as_slice())
                .bind(nonce as i64)
                .bind(epoch)
                .bind(gas_limit)
                .bind(kind)
                .bind(keeper_id)
                .bind(urgent)
                .fetch_one(&mut **tx)
                .await?;
                sqlx::query(
                    "INSERT INTO keeper_batch_items (batch_id, grant_id, payee, cumulative, listener, value, voucher_at)
                     SELECT $1, g, p, c, l, v, to_timestamp(t)
                     FROM UNNEST($2::bytea[], $3::bytea[], $4::numeric[], $5::bytea[], $6::numeric[], $7::float8[])
                          AS x (g, p, c, l, v, t)",
                )
                .bind(id)
                .bind(grants)
                .bind(payees)
                .bind(cumulatives)
                .bind(listeners)
                .bind(values)
                .bind(voucher_at)
                .execute(&mut **tx)
                .await?;
                store_attempt(tx, id, &attempt).await?;
                Ok(id)
            })
        })
        .await
    }

    /// Runs `f` in a transaction that first checks this keeper still holds lease `epoch` (and keeps the lease row
    /// shared-locked, so a takeover waits for the write to finish).
    async fn write<T, F>(&self, epoch: i64, f: F) -> Result<T>
    where
        F: for<'t> FnOnce(
            &'t mut sqlx::Transaction<'static, sqlx::Postgres>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T>> + Send + 't>,
        >,
    {
        let mut tx = self.pool.begin().await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT epoch FROM keeper_lease WHERE id = 1 FOR SHARE")
                .fetch_optional(&mut *tx)
                .await?;
        if current != Some(epoch) {
            return Err(Error::LostLease(epoch));
        }
        let out = f(&mut tx).await?;
        tx.commit().await?;
        Ok(out)
    }

    // ----- Health -----

    async fn check_stall(&self) -> Result<()> {
        let stall_after = self.options.stall_secs as f64;
        let oldest_open: Option<f64> = sqlx::query_scalar(
            "SELECT extract(epoch FROM now() - min(created_at))::float8 FROM keeper_batches
             WHERE chain_id = $1 AND sender = $2 AND status IN ('pending', 'broadcast', 'mined')",
        )
        .bind(self.target.chain_id as i64)
        .bind(self.sender().as_slice())
        .fetch_one(&self.pool)
        .await?;
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

/// Seconds before a voucher the vault would skip for `reason` is tried again. Out of funds, cap or window: the
/// listener may deposit, or another payee's voucher may be what is due; a minute. Stale: the indexer is behind; a
/// short wait. Invalid or malformed: only a newer voucher of the pair helps, which lifts the hold at once. A revoked
/// grant: never again, and no newer voucher lifts it (the candidate query matches its hold by grant).
fn retry_secs(reason: u8) -> f64 {
    match reason {
        SKIP_STALE => 15.0,
        SKIP_GRANT_EXPIRED | SKIP_CAP_EXCEEDED | SKIP_INSUFFICIENT_FUNDS => 60.0,
        _ => 86_400.0 * 365.0,
    }
}

/// How many items of a batch may need a wallet check, each with the vault's whole allowance.
fn wallet_checks(items: &[(Candidate, BeatStreamVault::SettlementItem)]) -> u64 {
    items.iter().filter(|(c, _)| c.needs_wallet_check()).count() as u64
}

/// Journals one signed transaction of batch `batch`.
async fn store_attempt(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    batch: i64,
    attempt: &Attempt,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO keeper_attempts (hash, batch_id, attempt, max_fee_per_gas, max_priority_fee_per_gas, raw, kind,
                                      gas_limit)
         VALUES ($1, $2, $3, $4::numeric, $5::numeric, $6, $7, $8)",
    )
    .bind(attempt.hash.as_slice())
    .bind(batch)
    .bind(attempt.attempt)
    .bind(attempt.max_fee.to_string())
    .bind(attempt.priority_fee.to_string())
    .bind(&attempt.raw)
    .bind(&attempt.kind)
    .bind(attempt.gas_limit as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The calldata of a journaled signed transaction.
fn decode_input(raw: &[u8]) -> Result<Bytes> {
    use alloy::{consensus::Transaction, eips::eip2718::Decodable2718};
    let envelope = alloy::consensus::TxEnvelope::decode_2718(&mut &raw[..])
        .map_err(|e| Error::Rpc(format!("undecodable journaled transaction: {e}")))?;
    Ok(envelope.input().clone())
}
