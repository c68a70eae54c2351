//! What the keeper asks of the chain: nonces, fees, simulations, receipts, and raw transaction broadcasts.
//!
//! The provider comes from `beatstream_primitives::rpc`: every request is bounded by `--rpc-timeout-secs`, retried
//! after rate limits and outages, and fails over between `--rpc-url`s.

mod simulation;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope},
    eips::eip2718::Encodable2718,
    primitives::{Address, B256, Bytes, TxKind, U256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionReceipt,
    sol_types::{SolCall, SolError, SolEvent},
};
use beatstream_primitives::{
    contracts::BeatStreamVault::{
        self, BatchCutShort, BeatStreamVault_NotSettler, Settled, SettlementItem,
        SettlementSkipped, TipItem, TipSkipped, Tipped, TipsCutShort,
    },
    rpc::{RpcArgs, is_method_not_found},
};
use beatstream_signer::Signer;
use serde_json::{Value, json};
use tracing::warn;

use crate::{
    Error, Result,
    db::{Outcome, SkipReason},
};

/// A JSON-RPC endpoint and the keeper's account on it.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    provider: DynProvider,
    /// Set once the endpoints turn out not to serve `eth_simulateV1`: batches are simulated with `eth_call`
    /// ([`simulation`]) from then on.
    without_simulate_v1: Arc<AtomicBool>,
}

/// A signed transaction, ready to journal and broadcast.
#[derive(Clone, Debug)]
pub(crate) struct SignedTx {
    pub(crate) hash: B256,
    pub(crate) raw: Vec<u8>,
}

/// What a broadcast came to.
#[derive(Debug)]
pub(crate) enum Sent {
    /// The node took it.
    Accepted,
    /// The node says the nonce is taken or the transaction is known: someone (maybe we) already submitted.
    AlreadySubmitted(String),
}

impl Chain {
    /// The endpoints of `rpc`; nothing is asked yet.
    pub(crate) fn connect(rpc: &RpcArgs) -> Result<Self> {
        let provider =
            beatstream_primitives::rpc::provider(rpc).map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self { provider, without_simulate_v1: Arc::default() })
    }

    pub(crate) fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// `fut`'s answer, or its error named after `what`.
    async fn ask<T, E: std::fmt::Display>(
        &self,
        what: &str,
        fut: impl std::future::IntoFuture<Output = std::result::Result<T, E>>,
    ) -> Result<T> {
        fut.await.map_err(|e| Error::Rpc(format!("{what}: {e}")))
    }

    pub(crate) async fn chain_id(&self) -> Result<u64> {
        self.ask("eth_chainId", self.provider.get_chain_id()).await
    }

    pub(crate) async fn head(&self) -> Result<u64> {
        self.ask("eth_blockNumber", self.provider.get_block_number()).await
    }

    /// Transactions of `account` included in the latest block.
    pub(crate) async fn nonce_latest(&self, account: Address) -> Result<u64> {
        self.ask("eth_getTransactionCount", self.provider.get_transaction_count(account).latest())
            .await
    }

    /// Transactions of `account` included or waiting in the node's pool with no gap.
    pub(crate) async fn nonce_pending(&self, account: Address) -> Result<u64> {
        self.ask("eth_getTransactionCount", self.provider.get_transaction_count(account).pending())
            .await
    }

    pub(crate) async fn balance(&self, account: Address) -> Result<U256> {
        self.ask("eth_getBalance", self.provider.get_balance(account)).await
    }

    /// (max fee per gas, max priority fee per gas) the node suggests.
    pub(crate) async fn fees(&self) -> Result<(u128, u128)> {
        let est = self.ask("fee estimate", self.provider.estimate_eip1559_fees()).await?;
        Ok((est.max_fee_per_gas, est.max_priority_fee_per_gas))
    }

    pub(crate) async fn receipt(&self, hash: B256) -> Result<Option<TransactionReceipt>> {
        self.ask("eth_getTransactionReceipt", self.provider.get_transaction_receipt(hash)).await
    }

    /// Whether the node knows the transaction (pending in its pool or included).
    pub(crate) async fn knows(&self, hash: B256) -> Result<bool> {
        let tx = self
            .ask("eth_getTransactionByHash", self.provider.get_transaction_by_hash(hash))
            .await?;
        Ok(tx.is_some())
    }

    /// Broadcasts a signed transaction. Answers meaning "this nonce is already submitted" are not failures.
    pub(crate) async fn send_raw(&self, raw: &[u8]) -> Result<Sent> {
        match self.provider.send_raw_transaction(raw).await {
            Ok(_) => Ok(Sent::Accepted),
            Err(e) => {
                let message = e.to_string();
                if is_already_submitted(&message) {
                    Ok(Sent::AlreadySubmitted(message))
                } else {
                    Err(Error::Rpc(format!("eth_sendRawTransaction: {message}")))
                }
            }
        }
    }

    /// Runs the batch (`settleBatch(items)`, or `settleBatchWithTips(items, tips)` with tips) from `from` on the
    /// latest state, and reports each item's and each tip's outcome and the gas used. Items skipped by the contract
    /// change nothing, so the outcome of the others does not depend on them.
    ///
    /// With `eth_simulateV1`, or with `eth_call`s once the endpoints answer that they do not serve it (remembered
    /// for good): the same outcomes, the gas a little higher ([`simulation`]).
    pub(crate) async fn simulate(
        &self,
        from: Address,
        vault: Address,
        items: &[SettlementItem],
        tips: &[TipItem],
    ) -> Result<Simulated> {
        if !self.without_simulate_v1.load(Ordering::Relaxed) {
            match self.simulate_v1(from, vault, items, tips).await? {
                Some(simulated) => return Ok(simulated),
                None => {
                    self.without_simulate_v1.store(true, Ordering::Relaxed);
                    warn!(target: "beatstream::keeper", "the RPC endpoint does not serve eth_simulateV1; simulating batches with eth_call from now on");
                }
            }
        }
        simulation::simulate(self, from, vault, items, tips).await
    }

    /// [`Self::simulate`] with `eth_simulateV1`; `None` when the endpoint does not serve it.
    async fn simulate_v1(
        &self,
        from: Address,
        vault: Address,
        items: &[SettlementItem],
        tips: &[TipItem],
    ) -> Result<Option<Simulated>> {
        let data = settle_input(items, tips);
        let payload = json!([{
            "blockStateCalls": [{ "calls": [{ "from": from, "to": vault, "data": data }] }],
            "validation": false,
        }, "latest"]);
        let result: Value = match self.provider.raw_request("eth_simulateV1".into(), payload).await
        {
            Ok(result) => result,
            Err(e) if does_not_serve(&e) => return Ok(None),
            Err(e) => return Err(Error::Rpc(format!("eth_simulateV1: {e}"))),
        };
        let call = &result[0]["calls"][0];
        if call["status"].as_str() != Some("0x1") {
            let data = call["returnData"].as_str().and_then(|d| d.parse::<Bytes>().ok());
            if data.is_some_and(|d| BeatStreamVault_NotSettler::abi_decode(&d).is_ok()) {
                // Removed by the owner while running (removal is immediate): say so, not just "reverted".
                return Err(self.settler_error(vault, from).await?);
            }
            return Err(Error::Rpc(format!("settleBatch simulation reverted: {call}")));
        }
        let gas = call["gasUsed"]
            .as_str()
            .and_then(|g| u64::from_str_radix(g.trim_start_matches("0x"), 16).ok())
            .ok_or_else(|| Error::Rpc(format!("eth_simulateV1 without gasUsed: {call}")))?;
        let logs: Vec<alloy::rpc::types::Log> =
            serde_json::from_value(call["logs"].clone()).map_err(Error::rpc)?;
        let item_outcomes = outcomes(vault, items, logs.iter().map(|l| &l.inner));
        let tip_outcomes = tip_outcomes(vault, tips, logs.iter().map(|l| &l.inner));
        Ok(Some(Simulated { items: item_outcomes, tips: tip_outcomes, gas }))
    }

    /// Whether `account` has code: a smart wallet (or an EOA with an EIP-7702 delegation), whose grant the vault
    /// checks with ERC-1271.
    pub(crate) async fn has_code(&self, account: Address) -> Result<bool> {
        let code = self.ask("eth_getCode", self.provider.get_code_at(account)).await?;
        Ok(!code.is_empty())
    }

    /// Fails unless `account` may call `settleBatch` on `vault` now (v2 settles only from the owner's settlers).
    pub(crate) async fn ensure_settler(&self, vault: Address, account: Address) -> Result<()> {
        let contract = BeatStreamVault::new(vault, &self.provider);
        if self.ask("isSettler", contract.isSettler(account).call()).await? {
            return Ok(());
        }
        Err(self.settler_error(vault, account).await?)
    }

    /// Why `account` is not a settler of `vault`: never allowed (or removed), or allowed from a time to come.
    pub(crate) async fn settler_error(&self, vault: Address, account: Address) -> Result<Error> {
        let contract = BeatStreamVault::new(vault, &self.provider);
        let from = self.ask("settlerFrom", contract.settlerFrom(account).call()).await?;
        let owner = self.ask("owner", contract.owner().call()).await?;
        let block = self
            .ask("eth_getBlockByNumber", self.provider.get_block_by_number(Default::default()))
            .await?
            .ok_or_else(|| Error::Rpc("eth_getBlockByNumber: no latest block".into()))?;
        Ok(Error::NotSettler {
            account,
            vault,
            owner,
            from: (!from.is_zero()).then(|| from.saturating_to()),
            now: block.header.timestamp,
        })
    }

    /// Estimated gas of a transaction (used for the self-transfer that frees a nonce).
    pub(crate) fn transfer_gas() -> u64 {
        21_000
    }
}

/// What a simulation says of a batch.
#[derive(Debug)]
pub(crate) struct Simulated {
    /// Each item's outcome, in item order.
    pub(crate) items: Vec<Outcome>,
    /// Each tip's outcome, in tip order.
    pub(crate) tips: Vec<Outcome>,
    /// The gas the batch used.
    pub(crate) gas: u64,
}

/// The calldata of a batch: `settleBatch(items)` without tips (its ABI as before contracts v3), else
/// `settleBatchWithTips(items, tips)`.
pub(crate) fn settle_input(items: &[SettlementItem], tips: &[TipItem]) -> Bytes {
    if tips.is_empty() {
        BeatStreamVault::settleBatchCall { items: items.to_vec() }.abi_encode().into()
    } else {
        BeatStreamVault::settleBatchWithTipsCall { items: items.to_vec(), tips: tips.to_vec() }
            .abi_encode()
            .into()
    }
}

/// The items and tips of a batch's calldata ([`settle_input`]).
pub(crate) fn decode_settle_input(input: &[u8]) -> Result<(Vec<SettlementItem>, Vec<TipItem>)> {
    if let Ok(call) = BeatStreamVault::settleBatchCall::abi_decode(input) {
        return Ok((call.items, Vec::new()));
    }
    let call = BeatStreamVault::settleBatchWithTipsCall::abi_decode(input)
        .map_err(|e| Error::Rpc(format!("undecodable journaled transaction: {e}")))?;
    Ok((call.items, call.tips))
}

/// Each tip's outcome, from the vault's `Tipped` and `TipSkipped` logs matched in order by (grant, tip id); tips
/// from a `TipsCutShort`'s `processed` index on were not reached.
pub(crate) fn tip_outcomes<'a>(
    vault: Address,
    tips: &[TipItem],
    logs: impl Iterator<Item = &'a alloy::primitives::Log>,
) -> Vec<Outcome> {
    let mut events = Vec::new();
    let mut processed = tips.len();
    for log in logs.filter(|l| l.address == vault) {
        if let Ok(e) = Tipped::decode_log(log) {
            events.push((e.grantId, e.tipId, Outcome::Settled));
        } else if let Ok(e) = TipSkipped::decode_log(log) {
            events.push((e.grantId, e.tipId, Outcome::Skipped(SkipReason::from_code(e.reason))));
        } else if let Ok(e) = TipsCutShort::decode_log(log) {
            processed = processed.min(e.processed.saturating_to::<usize>());
        }
    }
    let mut events = events.into_iter().peekable();
    tips.iter()
        .enumerate()
        .map(|(index, tip)| {
            if index >= processed {
                return Outcome::NotReached;
            }
            let id = grant_id(&tip.grant);
            match events.next_if(|(g, t, _)| *g == id && *t == tip.tipId) {
                Some((_, _, outcome)) => outcome,
                None => Outcome::Unmatched,
            }
        })
        .collect()
}

/// Each item's outcome, from the vault's `Settled` and `SettlementSkipped` logs, matched in order; items from a
/// `BatchCutShort`'s `processed` index on were not reached.
pub(crate) fn outcomes<'a>(
    vault: Address,
    items: &[SettlementItem],
    logs: impl Iterator<Item = &'a alloy::primitives::Log>,
) -> Vec<Outcome> {
    let mut events = Vec::new();
    let mut processed = items.len();
    for log in logs.filter(|l| l.address == vault) {
        if let Ok(e) = Settled::decode_log(log) {
            events.push((e.grantId, e.payee, Outcome::Settled));
        } else if let Ok(e) = SettlementSkipped::decode_log(log) {
            events.push((e.grantId, e.payee, Outcome::Skipped(SkipReason::from_code(e.reason))));
        } else if let Ok(e) = BatchCutShort::decode_log(log) {
            processed = processed.min(e.processed.saturating_to::<usize>());
        }
    }
    // One event per item looked at, in item order. A (grant, payee) appears once in a batch, so an event that does
    // not line up is left for the next item rather than shifting every later outcome.
    let mut events = events.into_iter().peekable();
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            if index >= processed {
                return Outcome::NotReached;
            }
            let id = grant_id(&item.grant);
            match events.next_if(|(g, p, _)| *g == id && *p == item.payee) {
                Some((_, _, outcome)) => outcome,
                None => Outcome::Unmatched,
            }
        })
        .collect()
}

/// The grant id (EIP-712 struct hash) of a settlement item's grant.
pub(crate) fn grant_id(grant: &BeatStreamVault::SessionGrant) -> B256 {
    beatstream_primitives::SessionGrant {
        listener: grant.listener,
        sessionKey: grant.sessionKey,
        cap: grant.cap,
        expiresAt: grant.expiresAt,
        nonce: grant.nonce,
    }
    .id()
}

/// Whether an error says the endpoint does not serve the method (rather than failing this call).
fn does_not_serve(e: &alloy::transports::TransportError) -> bool {
    match e.as_error_resp() {
        Some(payload) => is_method_not_found(payload.code, &payload.message),
        None => false,
    }
}

fn is_already_submitted(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["nonce too low", "already known", "replacement transaction underpriced", "known transaction"]
        .iter()
        .any(|needle| m.contains(needle))
        || m.contains("already imported")
        || m.contains("nonce has already been used")
}

/// Fields of an EIP-1559 transaction the keeper signs.
#[derive(Clone, Debug)]
pub(crate) struct TxParams {
    pub(crate) chain_id: u64,
    pub(crate) nonce: u64,
    pub(crate) to: Address,
    pub(crate) input: Bytes,
    pub(crate) gas_limit: u64,
    pub(crate) max_fee_per_gas: u128,
    pub(crate) max_priority_fee_per_gas: u128,
}

/// Signs `params` with `signer` (a KMS key: one request).
pub(crate) async fn sign(signer: &Signer, params: TxParams) -> Result<SignedTx> {
    let mut tx = TxEip1559 {
        chain_id: params.chain_id,
        nonce: params.nonce,
        gas_limit: params.gas_limit,
        max_fee_per_gas: params.max_fee_per_gas,
        max_priority_fee_per_gas: params.max_priority_fee_per_gas,
        to: TxKind::Call(params.to),
        value: U256::ZERO,
        access_list: Default::default(),
        input: params.input,
    };
    let signature = signer.sign_transaction(&mut tx).await.map_err(Error::Signer)?;
    let envelope = TxEnvelope::from(tx.into_signed(signature));
    Ok(SignedTx { hash: *envelope.tx_hash(), raw: envelope.encoded_2718() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(listener: u8, payee: u8) -> SettlementItem {
        SettlementItem {
            grant: BeatStreamVault::SessionGrant {
                listener: Address::repeat_byte(listener),
                sessionKey: Address::ZERO,
                cap: U256::MAX,
                expiresAt: 0,
                nonce: 0,
            },
            grantSignature: Bytes::new(),
            payee: Address::repeat_byte(payee),
            cumulative: U256::from(1),
            voucherSignature: Bytes::new(),
        }
    }

    fn log(vault: Address, event: &impl SolEvent) -> alloy::primitives::Log {
        alloy::primitives::Log { address: vault, data: event.encode_log_data() }
    }

    fn settled(item: &SettlementItem) -> Settled {
        Settled {
            grantId: grant_id(&item.grant),
            listener: item.grant.listener,
            payee: item.payee,
            amount: U256::from(1),
            cumulative: item.cumulative,
            fee: U256::ZERO,
        }
    }

    fn skipped(item: &SettlementItem, reason: u8) -> SettlementSkipped {
        SettlementSkipped {
            grantId: grant_id(&item.grant),
            payee: item.payee,
            cumulative: item.cumulative,
            reason,
        }
    }

    /// The vault's `SkipReason` codes this test emits.
    const SKIP_GRANT_REVOKED: u8 = 7;
    const SKIP_INSUFFICIENT_GAS: u8 = 8;

    #[test]
    fn items_after_a_cut_were_not_reached() {
        let vault = Address::repeat_byte(0xaa);
        let items = [item(1, 1), item(2, 2), item(3, 3), item(4, 4)];
        let logs = [
            log(vault, &settled(&items[0])),
            log(vault, &skipped(&items[1], SKIP_INSUFFICIENT_GAS)),
            // Another contract's log is not the vault's.
            log(Address::repeat_byte(0xbb), &settled(&items[2])),
            log(vault, &BatchCutShort { processed: U256::from(2), total: U256::from(4) }),
        ];
        assert_eq!(
            outcomes(vault, &items, logs.iter()),
            [
                Outcome::Settled,
                Outcome::Skipped(SkipReason::InsufficientGas),
                Outcome::NotReached,
                Outcome::NotReached
            ]
        );
        assert_eq!(SkipReason::from_code(SKIP_GRANT_REVOKED).as_str(), "grant_revoked");
        assert_eq!(SkipReason::from_code(SKIP_INSUFFICIENT_GAS).as_str(), "insufficient_gas");
    }

    #[test]
    fn an_item_without_its_event_does_not_shift_the_others() {
        let vault = Address::repeat_byte(0xaa);
        let items = [item(1, 1), item(2, 2), item(3, 3)];
        let logs =
            [log(vault, &settled(&items[0])), log(vault, &skipped(&items[2], SKIP_GRANT_REVOKED))];
        assert_eq!(
            outcomes(vault, &items, logs.iter()),
            [Outcome::Settled, Outcome::Unmatched, Outcome::Skipped(SkipReason::GrantRevoked)]
        );
    }

    fn tip(listener: u8, tip_id: u64) -> TipItem {
        TipItem {
            grant: item(listener, 1).grant,
            grantSignature: Bytes::new(),
            payee: Address::repeat_byte(9),
            tipId: U256::from(tip_id),
            amount: U256::from(5),
            message: "thanks".into(),
            tipSignature: Bytes::new(),
        }
    }

    #[test]
    fn tips_are_matched_by_grant_and_tip_id_and_cut_short_tips_were_not_reached() {
        let vault = Address::repeat_byte(0xaa);
        let tips = [tip(1, 1), tip(1, 2), tip(2, 1), tip(3, 1)];
        let tipped = |t: &TipItem| Tipped {
            grantId: grant_id(&t.grant),
            listener: t.grant.listener,
            payee: t.payee,
            tipId: t.tipId,
            amount: t.amount,
            fee: U256::ZERO,
            message: t.message.clone(),
        };
        let logs = [
            // An item's event and another contract's are not the tips'.
            log(vault, &settled(&item(1, 1))),
            log(Address::repeat_byte(0xbb), &tipped(&tips[1])),
            log(vault, &tipped(&tips[0])),
            log(
                vault,
                &TipSkipped {
                    grantId: grant_id(&tips[1].grant),
                    payee: tips[1].payee,
                    tipId: tips[1].tipId,
                    reason: 9,
                },
            ),
            log(vault, &TipsCutShort { processed: U256::from(3), total: U256::from(4) }),
        ];
        assert_eq!(
            tip_outcomes(vault, &tips, logs.iter()),
            [
                Outcome::Settled,
                Outcome::Skipped(SkipReason::TipAlreadySettled),
                Outcome::Unmatched,
                Outcome::NotReached
            ]
        );
        // The calldata round-trips, and a batch without tips is a plain settleBatch.
        let items = vec![item(1, 1)];
        let input = settle_input(&items, &tips);
        let (back_items, back_tips) = decode_settle_input(&input).unwrap();
        assert_eq!((back_items.len(), back_tips.len()), (1, 4));
        assert_eq!(back_tips[3].tipId, U256::from(1));
        let plain = settle_input(&items, &[]);
        assert!(BeatStreamVault::settleBatchCall::abi_decode(&plain).is_ok());
        assert_eq!(decode_settle_input(&plain).unwrap().1.len(), 0);
    }

    #[test]
    fn recognises_already_submitted_answers() {
        for m in [
            "server returned an error response: error code -32000: nonce too low",
            "already known",
            "replacement transaction underpriced",
            "Known transaction",
        ] {
            assert!(is_already_submitted(m), "{m}");
        }
        assert!(!is_already_submitted("insufficient funds for gas * price + value"));
    }
}
