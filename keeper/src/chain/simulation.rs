//! Simulating a batch on a node that does not serve `eth_simulateV1`, with `eth_call` alone, to the same outcome:
//! which items the vault settles, why it skips each other one, and the gas the batch needs.
//!
//! An `eth_call` of `settleBatch` answers only how many items settled (the vault skips a bad item with an event, it
//! does not revert). That is enough:
//!
//! - **Which items.** A skipped item changes nothing, so the first `k` items of the batch settle exactly the items
//!   they settle inside the whole batch: item `i` settles if and only if count(i + 1) > count(i). The count of the
//!   whole batch, and of the prefixes a bisection asks for (about log2 n calls per skipped item), say which.
//! - **Why.** For each skipped item, the vault's own views, read in the order its `_settle` checks (settlement
//!   window, stale voucher, cap, grant signature, voucher signature, revocation, funds), counting what the batch's
//!   earlier settled items spent of the grant and the listener's funds.
//! - **Gas.** The least gas limit at which the batch still settles all it settles with the block's gas, by a
//!   bisection of `eth_call`s given that limit (`eth_estimateGas` would find the gas at which the vault, stopping
//!   short of gas instead of reverting, settles nothing). It includes the vault's guard of 80,000 gas before the
//!   last item, so it is a little above what `eth_simulateV1` reports as used; the keeper's margin goes on top.
//! - **Tips.** A batch with tips is `settleBatchWithTips(items, tips)`, whose answer is (items settled, tips
//!   settled): the tips are counted after the items, as positions `n + j` of one sequence, the prefixes of which
//!   are the items' prefixes and then all items with the tips' prefixes. A skipped tip's reason is read the same
//!   way, in `_settleTip`'s order (malformed, message length, window, already settled, cap, signature, revocation,
//!   funds).
//!
//! Every call is pinned to one block, so the answers agree with one another.

use std::future::Future;

use alloy::{
    eips::{BlockId, BlockNumberOrTag},
    network::TransactionBuilder,
    primitives::{Address, Bytes, FixedBytes, U256},
    providers::{DynProvider, Provider},
    rpc::{json_rpc::ErrorPayload, types::TransactionRequest},
    sol,
    sol_types::SolCall,
    transports::RpcError,
};
use beatstream_primitives::{
    contracts::BeatStreamVault::{self, BeatStreamVault_NotSettler, SettlementItem, TipItem},
    eip712::recover,
    rpc::is_rate_limited,
};
use tracing::warn;

use super::{Chain, Simulated, grant_id};
use crate::{
    Error, Result,
    db::{Outcome, SkipReason},
    policy::batch::BATCH_BASE_GAS,
};

sol! {
    #[sol(rpc)]
    interface IERC1271 {
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4 magicValue);
    }
}

/// ERC-1271's magic value: `isValidSignature.selector`.
const ERC1271_MAGIC: FixedBytes<4> = FixedBytes([0x16, 0x26, 0xba, 0x7e]);
/// The most a grant can spend: `MAX_GRANT_SPEND` in `contracts/src/BeatStreamVault.sol`.
const MAX_GRANT_SPEND: u64 = (1 << 48) - 1;
/// Gas per item the gas search starts from (it doubles until the batch fits).
const GAS_PER_ITEM_GUESS: u64 = 50_000;

/// The most bytes of a tip's message: `MAX_TIP_MESSAGE_BYTES` in `contracts/src/BeatStreamVault.sol`.
const MAX_TIP_MESSAGE_BYTES: usize = 280;

/// Runs the batch from `from` with `eth_call`s on the latest block: each item's and tip's outcome and the gas the
/// batch needs, as [`Chain::simulate`] reports them.
pub(crate) async fn simulate(
    chain: &Chain,
    from: Address,
    vault: Address,
    items: &[SettlementItem],
    tips: &[TipItem],
) -> Result<Simulated> {
    let provider = chain.provider();
    let block = provider
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .map_err(|e| Error::Rpc(format!("eth_getBlockByNumber: {e}")))?
        .ok_or_else(|| Error::Rpc("eth_getBlockByNumber: no latest block".into()))?;
    let calls =
        Calls { provider, from, vault, items, tips, at: BlockId::number(block.header.number) };
    let n = items.len() + tips.len();

    let total = match calls.count(n, None).await? {
        Ok(total) => total,
        Err(e) if e.as_decoded_error::<BeatStreamVault_NotSettler>().is_some() => {
            // Removed by the owner while running (removal is immediate): say so, not just "reverted".
            return Err(chain.settler_error(vault, from).await?);
        }
        Err(e) => return Err(Error::Rpc(format!("settleBatch call reverted: {e}"))),
    };
    let settled = settled_items(n, total, |k| async move {
        calls
            .count(k, None)
            .await?
            .map_err(|e| Error::Rpc(format!("settleBatch call reverted: {e}")))
    })
    .await?;

    let now = block.header.timestamp;
    let mut window = None;
    let mut outcomes = Vec::with_capacity(items.len());
    for (index, &settles) in settled.iter().enumerate() {
        if settles {
            outcomes.push(Outcome::Settled);
            continue;
        }
        let window = match window {
            Some(window) => window,
            None => *window.insert(
                BeatStreamVault::new(vault, provider)
                    .settlementWindow()
                    .call()
                    .block(calls.at)
                    .await
                    .map_err(|e| Error::Rpc(format!("settlementWindow: {e}")))?,
            ),
        };
        let reason = if index < items.len() {
            calls.why_skipped(index, &settled, now, window).await?
        } else {
            calls.why_tip_skipped(index - items.len(), &settled, now, window).await?
        };
        outcomes.push(Outcome::Skipped(reason));
    }

    let gas = if total == 0 {
        // Nothing would settle: every item is held and no transaction is sent, so there is no gas to find.
        0
    } else {
        let start = BATCH_BASE_GAS + GAS_PER_ITEM_GUESS * n as u64;
        let fits = |gas| async move {
            Ok(matches!(calls.count(n, Some(gas)).await?, Ok(settled) if settled == total))
        };
        // Not even the whole block's gas: report it, and the budget check leaves items out.
        least_gas(start, block.header.gas_limit, fits).await?.unwrap_or(block.header.gas_limit)
    };
    let tip_outcomes = outcomes.split_off(items.len());
    Ok(Simulated { items: outcomes, tips: tip_outcomes, gas })
}

/// Which of `n` items settle, from `count(k)`: how many of the first `k` items settle (`total` for all `n`).
pub(crate) async fn settled_items<F, Fut>(n: usize, total: u64, mut count: F) -> Result<Vec<bool>>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<u64>>,
{
    let mut settled = vec![false; n];
    // Ranges of items [lo, hi) with the counts of their ends, whose items are not told apart yet.
    let mut open = vec![(0, n, 0, total)];
    while let Some((lo, hi, below, upto)) = open.pop() {
        if upto < below || upto - below > (hi - lo) as u64 {
            return Err(Error::Rpc(format!(
                "eth_call answers disagree: {below} of the first {lo} items settle, {upto} of the first {hi}"
            )));
        }
        if upto - below == (hi - lo) as u64 {
            settled[lo..hi].fill(true);
        } else if upto > below {
            // Some but not all settle: here hi - lo >= 2.
            let mid = lo + (hi - lo) / 2;
            let at_mid = count(mid).await?;
            open.push((lo, mid, below, at_mid));
            open.push((mid, hi, at_mid, upto));
        }
    }
    Ok(settled)
}

/// The least gas limit, within 1/64 (or 1,000 gas), for which `fits` holds, searching up from `start` by doubling
/// and then down by bisection; `None` when not even `ceiling` fits.
pub(crate) async fn least_gas<F, Fut>(start: u64, ceiling: u64, mut fits: F) -> Result<Option<u64>>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let (mut lo, mut hi) = (0, start.min(ceiling));
    while !fits(hi).await? {
        if hi >= ceiling {
            return Ok(None);
        }
        (lo, hi) = (hi, hi.saturating_mul(2).min(ceiling));
    }
    while hi - lo > (hi / 64).max(1_000) {
        let mid = lo + (hi - lo) / 2;
        if fits(mid).await? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(Some(hi))
}

/// `eth_call`s of the batch and of the vault's views, all on one block.
#[derive(Clone, Copy)]
struct Calls<'a> {
    provider: &'a DynProvider,
    from: Address,
    vault: Address,
    items: &'a [SettlementItem],
    tips: &'a [TipItem],
    at: BlockId,
}

impl Calls<'_> {
    /// How many of the first `k` of the items followed by the tips settle, with `gas` or the node's default; the
    /// node's error when the call fails there (a revert, or out of gas).
    async fn count(&self, k: usize, gas: Option<u64>) -> Result<Result<u64, ErrorPayload>> {
        let n = self.items.len();
        let with_tips = !self.tips.is_empty();
        let input: Bytes = if with_tips {
            // The same call throughout (tips or not in the prefix), so every answer decodes alike.
            BeatStreamVault::settleBatchWithTipsCall {
                items: self.items[..k.min(n)].to_vec(),
                tips: self.tips[..k.saturating_sub(n)].to_vec(),
            }
            .abi_encode()
            .into()
        } else {
            BeatStreamVault::settleBatchCall { items: self.items[..k].to_vec() }.abi_encode().into()
        };
        let mut tx = TransactionRequest::default()
            .with_from(self.from)
            .with_to(self.vault)
            .with_input(input);
        if let Some(gas) = gas {
            tx = tx.with_gas_limit(gas);
        }
        match self.provider.call(tx).block(self.at).await {
            Ok(out) if with_tips => {
                let r = BeatStreamVault::settleBatchWithTipsCall::abi_decode_returns(&out)
                    .map_err(|e| {
                        Error::Rpc(format!("settleBatchWithTips call returned {out}: {e}"))
                    })?;
                Ok(Ok(r.settledCount.saturating_to::<u64>() + r.tipsSettled.saturating_to::<u64>()))
            }
            Ok(out) => {
                let settled = BeatStreamVault::settleBatchCall::abi_decode_returns(&out)
                    .map_err(|e| Error::Rpc(format!("settleBatch call returned {out}: {e}")))?;
                Ok(Ok(settled.saturating_to()))
            }
            Err(RpcError::ErrorResp(e)) if !is_rate_limited(&e.message) => Ok(Err(e)),
            Err(e) => Err(Error::Rpc(format!("eth_call settleBatch: {e}"))),
        }
    }

    /// Why the vault skips item `index`, given which items of the batch settle: its checks in its order, each read
    /// from its views, with what the batch's earlier settled items spent.
    async fn why_skipped(
        &self,
        index: usize,
        settled: &[bool],
        now: u64,
        window: u64,
    ) -> Result<SkipReason> {
        let item = &self.items[index];
        let grant = &item.grant;
        let id = grant_id(grant);
        if item.payee.is_zero() || grant.listener.is_zero() {
            return Ok(SkipReason::Malformed);
        }
        if now > grant.expiresAt.saturating_add(window) {
            return Ok(SkipReason::GrantExpired);
        }
        let vault = BeatStreamVault::new(self.vault, self.provider);
        let view = |what: &'static str| {
            move |e: alloy::contract::Error| Error::Rpc(format!("{what}: {e}"))
        };
        let prior =
            vault.settled(id, item.payee).call().block(self.at).await.map_err(view("settled"))?;
        if item.cumulative <= prior {
            return Ok(SkipReason::StaleVoucher);
        }
        let amount = item.cumulative - prior;
        // Earlier items of the batch that settle: they registered their grant and spent from it and their listener.
        let earlier: Vec<&SettlementItem> =
            self.items[..index].iter().zip(settled).filter(|(_, s)| **s).map(|(i, _)| i).collect();
        let mut spent =
            vault.grantSpent(id).call().block(self.at).await.map_err(view("grantSpent"))?;
        let mut registered = !spent.is_zero();
        let mut debited = U256::ZERO;
        for other in earlier {
            let same_grant = grant_id(&other.grant) == id;
            if !same_grant && other.grant.listener != grant.listener {
                continue;
            }
            let other_prior = vault
                .settled(grant_id(&other.grant), other.payee)
                .call()
                .block(self.at)
                .await
                .map_err(view("settled"))?;
            let other_amount = other.cumulative.saturating_sub(other_prior);
            if same_grant {
                registered = true;
                spent += other_amount;
            }
            if other.grant.listener == grant.listener {
                debited += other_amount;
            }
        }
        if amount > grant.cap.min(U256::from(MAX_GRANT_SPEND)).saturating_sub(spent) {
            return Ok(SkipReason::CapExceeded);
        }
        if !registered {
            let digest = vault
                .grantDigest(grant.clone())
                .call()
                .block(self.at)
                .await
                .map_err(view("grantDigest"))?;
            let signed = recover(digest, &item.grantSignature).is_ok_and(|a| a == grant.listener);
            if !signed && !self.wallet_accepts(grant.listener, digest, &item.grantSignature).await?
            {
                return Ok(SkipReason::InvalidGrantSignature);
            }
        }
        let digest = vault
            .voucherDigest(id, item.payee, item.cumulative)
            .call()
            .block(self.at)
            .await
            .map_err(view("voucherDigest"))?;
        if !recover(digest, &item.voucherSignature).is_ok_and(|a| a == grant.sessionKey) {
            return Ok(if item.voucherSignature.len() == 65 {
                SkipReason::InvalidVoucherSignature
            } else {
                SkipReason::Malformed
            });
        }
        if vault.isRevoked(grant.clone()).call().block(self.at).await.map_err(view("isRevoked"))? {
            return Ok(SkipReason::GrantRevoked);
        }
        let account = vault
            .accountOf(grant.listener)
            .call()
            .block(self.at)
            .await
            .map_err(view("accountOf"))?;
        if amount > (account.available + account.thawing).saturating_sub(debited) {
            return Ok(SkipReason::InsufficientFunds);
        }
        warn!(target: "beatstream::keeper", grant = %id, payee = %item.payee, cumulative = %item.cumulative, "the vault skips this voucher and its views do not say why");
        Ok(SkipReason::Unknown)
    }

    /// Why the vault skips tip `index`, given which of the items followed by the tips settle (`settled`): its checks
    /// in `_settleTip`'s order, each read from its views, with what the batch's earlier settled items and tips spent.
    async fn why_tip_skipped(
        &self,
        index: usize,
        settled: &[bool],
        now: u64,
        window: u64,
    ) -> Result<SkipReason> {
        let tip = &self.tips[index];
        let grant = &tip.grant;
        let id = grant_id(grant);
        if tip.payee.is_zero() || grant.listener.is_zero() || tip.amount.is_zero() {
            return Ok(SkipReason::Malformed);
        }
        if tip.message.len() > MAX_TIP_MESSAGE_BYTES {
            return Ok(SkipReason::MessageTooLong);
        }
        if now > grant.expiresAt.saturating_add(window) {
            return Ok(SkipReason::GrantExpired);
        }
        let vault = BeatStreamVault::new(self.vault, self.provider);
        let view = |what: &'static str| {
            move |e: alloy::contract::Error| Error::Rpc(format!("{what}: {e}"))
        };
        if vault
            .isTipSettled(id, tip.tipId)
            .call()
            .block(self.at)
            .await
            .map_err(view("isTipSettled"))?
        {
            return Ok(SkipReason::TipAlreadySettled);
        }
        let mut spent =
            vault.grantSpent(id).call().block(self.at).await.map_err(view("grantSpent"))?;
        let mut registered = !spent.is_zero();
        let mut debited = U256::ZERO;
        let n = self.items.len();
        for (other, _) in self.items.iter().zip(settled).filter(|(_, s)| **s) {
            let same_grant = grant_id(&other.grant) == id;
            if !same_grant && other.grant.listener != grant.listener {
                continue;
            }
            let prior = vault
                .settled(grant_id(&other.grant), other.payee)
                .call()
                .block(self.at)
                .await
                .map_err(view("settled"))?;
            let amount = other.cumulative.saturating_sub(prior);
            if same_grant {
                registered = true;
                spent += amount;
            }
            if other.grant.listener == grant.listener {
                debited += amount;
            }
        }
        for (other, _) in self.tips[..index].iter().zip(&settled[n..]).filter(|(_, s)| **s) {
            if grant_id(&other.grant) == id {
                registered = true;
                spent += other.amount;
            }
            if other.grant.listener == grant.listener {
                debited += other.amount;
            }
        }
        if tip.amount > grant.cap.min(U256::from(MAX_GRANT_SPEND)).saturating_sub(spent) {
            return Ok(SkipReason::CapExceeded);
        }
        if !registered {
            let digest = vault
                .grantDigest(grant.clone())
                .call()
                .block(self.at)
                .await
                .map_err(view("grantDigest"))?;
            let signed = recover(digest, &tip.grantSignature).is_ok_and(|a| a == grant.listener);
            if !signed && !self.wallet_accepts(grant.listener, digest, &tip.grantSignature).await? {
                return Ok(SkipReason::InvalidGrantSignature);
            }
        }
        let message_hash = alloy::primitives::keccak256(tip.message.as_bytes());
        let digest = vault
            .tipDigest(id, tip.payee, tip.tipId, tip.amount, message_hash)
            .call()
            .block(self.at)
            .await
            .map_err(view("tipDigest"))?;
        if !recover(digest, &tip.tipSignature).is_ok_and(|a| a == grant.sessionKey) {
            return Ok(if tip.tipSignature.len() == 65 {
                SkipReason::InvalidVoucherSignature
            } else {
                SkipReason::Malformed
            });
        }
        if vault.isRevoked(grant.clone()).call().block(self.at).await.map_err(view("isRevoked"))? {
            return Ok(SkipReason::GrantRevoked);
        }
        let account = vault
            .accountOf(grant.listener)
            .call()
            .block(self.at)
            .await
            .map_err(view("accountOf"))?;
        if tip.amount > (account.available + account.thawing).saturating_sub(debited) {
            return Ok(SkipReason::InsufficientFunds);
        }
        warn!(target: "beatstream::keeper", grant = %id, payee = %tip.payee, tip_id = %tip.tipId, "the vault skips this tip and its views do not say why");
        Ok(SkipReason::Unknown)
    }

    /// Whether `listener` is a contract that accepts `signature` for `digest` under ERC-1271.
    async fn wallet_accepts(
        &self,
        listener: Address,
        digest: alloy::primitives::B256,
        signature: &Bytes,
    ) -> Result<bool> {
        let code = self
            .provider
            .get_code_at(listener)
            .block_id(self.at)
            .await
            .map_err(|e| Error::Rpc(format!("eth_getCode: {e}")))?;
        if code.is_empty() {
            return Ok(false);
        }
        let wallet = IERC1271::new(listener, self.provider);
        match wallet.isValidSignature(digest, signature.clone()).call().block(self.at).await {
            Ok(magic) => Ok(magic == ERC1271_MAGIC),
            // The wallet answered: a revert or something that is not a bytes4.
            Err(alloy::contract::Error::TransportError(RpcError::ErrorResp(_)))
            | Err(alloy::contract::Error::AbiError(_))
            | Err(alloy::contract::Error::ZeroData(..)) => Ok(false),
            Err(e) => Err(Error::Rpc(format!("isValidSignature: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use proptest::prelude::*;

    use super::*;

    /// `settled_items` over a batch whose items settle as `settles` says, counting the calls it makes.
    fn run(settles: &[bool]) -> (Vec<bool>, usize) {
        let calls = RefCell::new(0);
        let count = |k: usize| {
            *calls.borrow_mut() += 1;
            std::future::ready(Ok(settles[..k].iter().filter(|s| **s).count() as u64))
        };
        let total = settles.iter().filter(|s| **s).count() as u64;
        let found = futures_executor(settled_items(settles.len(), total, count));
        (found.unwrap(), calls.into_inner())
    }

    /// Polls a future that never waits.
    fn futures_executor<T>(f: impl Future<Output = T>) -> T {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("the future waited"),
        }
    }

    #[test]
    fn a_batch_that_settles_whole_needs_no_more_calls() {
        assert_eq!(run(&[true; 50]), (vec![true; 50], 0));
        assert_eq!(run(&[false; 50]), (vec![false; 50], 0));
    }

    #[test]
    fn one_skipped_item_is_found_in_about_log2_calls() {
        let mut settles = vec![true; 200];
        settles[137] = false;
        let (found, calls) = run(&settles);
        assert_eq!(found, settles);
        assert!(calls <= 8, "{calls} calls");
    }

    #[test]
    fn answers_that_disagree_are_an_error() {
        let count = |k: usize| std::future::ready(Ok(if k == 1 { 5 } else { 1 }));
        assert!(futures_executor(settled_items(4, 1, count)).is_err());
    }

    #[test]
    fn the_least_gas_is_found_within_its_precision() {
        for need in [21_000, 90_000, 1_234_567, 5_000_000] {
            let fits = |g: u64| std::future::ready(Ok(g >= need));
            let found = futures_executor(least_gas(100_000, 30_000_000, fits)).unwrap().unwrap();
            assert!(found >= need && found - need <= (found / 64).max(1_000), "{need}: {found}");
        }
        let never = |_| std::future::ready(Ok(false));
        assert_eq!(futures_executor(least_gas(100_000, 30_000_000, never)).unwrap(), None);
    }

    proptest! {
        #[test]
        fn finds_exactly_which_items_settle(settles in proptest::collection::vec(any::<bool>(), 0..120)) {
            let (found, calls) = run(&settles);
            prop_assert_eq!(&found, &settles);
            let skipped = settles.iter().filter(|s| !**s).count();
            prop_assert!(calls <= skipped * 8 + 1, "{} calls for {} skipped", calls, skipped);
        }
    }
}
