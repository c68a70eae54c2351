//! New batches: load the book and the unsettled tips, decide whether a batch is due and what goes in it
//! (`policy::batch`), find the smart wallets among the listeners, simulate, hold what the vault would skip, journal,
//! then broadcast: `settleBatch`, or `settleBatchWithTips` when the batch holds tips.

use std::{collections::HashMap, time::Instant};

use alloy::primitives::{Address, U256};
use beatstream_primitives::contracts::BeatStreamVault::{SettlementItem, TipItem};
use tracing::{Span, debug, field, info, instrument, warn};

use super::state::Keeper;
use crate::{
    Error, FailPoint, Result,
    book::{Candidate, Tip},
    chain::{self, Simulated},
    db::{AttemptKind, BatchKind, NewBatch, SkipReason},
    policy::batch::{self, Policy, Triage, Trigger},
};

impl Keeper {
    /// Settles what is due, if anything: plan, simulate, journal, broadcast. The span gets the batch's nonce and id
    /// once they are known.
    #[instrument(
        target = "beatstream::keeper",
        name = "batch",
        skip_all,
        fields(batch = field::Empty, nonce = field::Empty, epoch = epoch, kind = "settle")
    )]
    pub(super) async fn settle(&mut self, epoch: i64) -> Result<()> {
        let book = self.db.candidates(self.target, self.options.urgent_window_secs).await?;
        let tips = self.db.tips(self.target, self.options.urgent_window_secs).await?;
        let total: U256 = book.iter().map(|c| c.value).sum();
        self.metrics.unsettled_vouchers.set(book.len() as i64);
        self.metrics.unsettled_value.set(i64::try_from(total).unwrap_or(i64::MAX));
        if book.is_empty() && tips.is_empty() {
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
        let Some((trigger, mut chosen, mut tips)) = batch::plan(book, tips, &policy) else {
            self.due_since = None;
            return Ok(());
        };
        self.due_since.get_or_insert_with(Instant::now);
        // Wallet checks need their allowance within the budget: find the wallets, then fit the batch again.
        self.find_wallets(&mut chosen, &mut tips).await?;
        let (chosen, tips) = batch::fit_all(chosen, tips, &policy);

        let Some((items, tips, gas)) = self.simulate(chosen, tips).await? else {
            return Ok(());
        };
        let (max_fee, priority) = match fees {
            Some(fees) => fees,
            None => self.fees().await?,
        };
        let wallet_checks = batch::wallet_checks(&items, &tips);
        let guard = batch::guard(&items, &tips);
        let gas_limit = batch::gas_limit(gas, wallet_checks, guard, self.options.gas_budget);
        let nonce = self.next_nonce().await?;
        Span::current().record("nonce", nonce);
        let input = chain::settle_input(
            &items.iter().map(|(_, item)| item.clone()).collect::<Vec<_>>(),
            &tips.iter().map(|(_, tip)| tip.clone()).collect::<Vec<_>>(),
        );
        let attempt = self
            .sign_attempt(
                0,
                AttemptKind::Settle,
                nonce,
                self.target.vault,
                input,
                gas_limit,
                (max_fee, priority),
            )
            .await?;
        let candidates: Vec<Candidate> = items.into_iter().map(|(c, _)| c).collect();
        let tips: Vec<Tip> = tips.into_iter().map(|(t, _)| t).collect();
        let urgent = trigger == Trigger::Urgent;
        let batch = NewBatch {
            nonce,
            kind: BatchKind::Settle,
            urgent,
            items: &candidates,
            tips: &tips,
            attempt: &attempt,
        };
        if self.fail_point == Some(FailPoint::StopBeforeJournal) {
            self.fail_point = None;
            stop_this_process();
        }
        let id = self.journal.insert_batch(epoch, batch).await?;
        Span::current().record("batch", id);
        self.metrics.attempts.inc();
        let value: U256 = candidates.iter().map(|c| c.value).sum();
        let tipped: U256 = tips.iter().map(|t| t.amount).sum();
        info!(target: "beatstream::keeper", batch = id, nonce, vouchers = candidates.len(), %value, tips = tips.len(), %tipped, ?trigger, simulated_gas = gas, wallet_checks, guard, gas_limit, hash = %attempt.hash, "settling");
        self.last_batch_at = Instant::now();
        self.due_since = None;
        if self.fail_point == Some(FailPoint::AfterJournal) {
            self.fail_point = None;
            return Err(Error::FailPoint(FailPoint::AfterJournal));
        }
        self.broadcast(epoch, id, &attempt).await
    }

    /// Runs the batch against the latest state and keeps only what the vault would settle. Vouchers and tips it
    /// would skip are held (a voucher until a newer one or a retry time, a tip until a retry time) so they never
    /// block the rest. Returns the items and tips in order and the gas the simulation used, or `None` when nothing
    /// is left.
    #[allow(clippy::type_complexity)]
    async fn simulate(
        &mut self,
        mut chosen: Vec<Candidate>,
        mut tips: Vec<Tip>,
    ) -> Result<Option<(Vec<(Candidate, SettlementItem)>, Vec<(Tip, TipItem)>, u64)>> {
        for _round in 0..4 {
            if chosen.is_empty() && tips.is_empty() {
                return Ok(None);
            }
            let items = batch::order(&chosen);
            let tip_items = batch::order_tips(&items, &tips);
            let calls: Vec<_> = items.iter().map(|(_, i)| i.clone()).collect();
            let tip_calls: Vec<_> = tip_items.iter().map(|(_, t)| t.clone()).collect();
            let Simulated { items: outcomes, tips: tip_outcomes, gas } =
                self.chain.simulate(self.sender(), self.target.vault, &calls, &tip_calls).await?;
            let mut triage = batch::triage(&items, &outcomes);
            batch::triage_tips(&mut triage, &tip_items, &tip_outcomes);
            let Triage { keep, held, deferred, keep_tips, held_tips } = triage;
            if deferred > 0 {
                info!(target: "beatstream::keeper", deferred, "the simulation ran short of gas; leaving vouchers or tips for a later batch");
            }
            if held.is_empty()
                && held_tips.is_empty()
                && keep.len() == items.len()
                && keep_tips.len() == tip_items.len()
            {
                let wallet_checks = batch::wallet_checks(&items, &tip_items);
                let count = items.len() + tip_items.len();
                if !batch::within_budget(gas, wallet_checks, self.options.gas_budget, count) {
                    // The estimate per item was too low: drop the least valuable tenth and try again.
                    (chosen, tips) = batch::shrink_all(chosen, tips);
                    continue;
                }
                return Ok(Some((items, tip_items, gas)));
            }
            self.hold(&held).await?;
            self.hold_tips(&held_tips).await?;
            chosen = keep;
            tips = keep_tips;
        }
        Ok(None)
    }

    /// Marks the chosen vouchers and tips whose grant is not registered and whose listener is a contract
    /// (`eth_getCode`).
    async fn find_wallets(&mut self, chosen: &mut [Candidate], tips: &mut [Tip]) -> Result<()> {
        let mut asked: HashMap<Address, bool> = HashMap::new();
        let unregistered = chosen
            .iter_mut()
            .filter(|c| !c.registered)
            .map(|c| (c.grant.listener, &mut c.wallet))
            .chain(
                tips.iter_mut()
                    .filter(|t| !t.registered)
                    .map(|t| (t.grant.listener, &mut t.wallet)),
            );
        for (listener, wallet) in unregistered {
            *wallet = if self.wallets.contains(&listener) {
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

    async fn hold_tips(&self, held: &[(Tip, SkipReason)]) -> Result<()> {
        for (t, reason) in held {
            warn!(target: "beatstream::keeper", grant = %t.grant_id, payee = %t.payee, tip_id = %t.tip_id, amount = %t.amount, %reason, "the vault would skip this tip; holding it");
            self.metrics.tips_held.inc();
            self.db.hold_tip(t, *reason, batch::retry_secs(*reason)).await?;
        }
        Ok(())
    }

    /// The next nonce: past everything the chain has (included or pooled without a gap) and everything journaled.
    async fn next_nonce(&self) -> Result<u64> {
        let pending = self.chain.nonce_pending(self.sender()).await?;
        let journaled = self.journal.highest_open_nonce().await?;
        Ok(pending.max(journaled.map_or(0, |n| n + 1)))
    }
}

/// The [`FailPoint::StopBeforeJournal`] hang: SIGSTOP to this process (every thread stops, connections stay open),
/// returning once something sends SIGCONT.
fn stop_this_process() {
    warn!(target: "beatstream::keeper", pid = std::process::id(), "fail point: stopping this process before journaling");
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &std::process::id().to_string()])
        .status();
    info!(target: "beatstream::keeper", ?stopped, "fail point: continued");
}
