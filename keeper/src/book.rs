//! The voucher book as the keeper sees it: what is settleable, whether to settle now, and what goes in a batch.

use std::collections::HashMap;

use alloy::primitives::{Address, B256, Bytes, U256};
use beatstream_primitives::contracts::BeatStreamVault::{SessionGrant, SettlementItem};

/// A voucher whose cumulative is above what is settled, with everything needed to settle it.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub(crate) grant_id: B256,
    pub(crate) grant: SessionGrant,
    pub(crate) grant_signature: Bytes,
    /// The indexer has seen the grant registered in the vault: its signature need not be sent again.
    pub(crate) registered: bool,
    pub(crate) payee: Address,
    pub(crate) cumulative: U256,
    pub(crate) signature: Bytes,
    /// What settling it should pay: cumulative minus what is settled.
    pub(crate) value: U256,
    /// Unix time the relay stored the voucher.
    pub(crate) voucher_at: f64,
    /// The listener asked to withdraw, or the grant's settlement window is closing.
    pub(crate) urgent: bool,
    /// The listener is a contract (a smart wallet), so the vault checks the grant with ERC-1271 until the grant is
    /// registered. Looked up only for unregistered grants about to be batched; false until then.
    pub(crate) wallet: bool,
}

impl Candidate {
    /// Whether the vault may run a wallet check for this item: its grant is not registered and the listener is a
    /// contract. Every such item counts, not only the grant's first: if the first one's check fails, the next item
    /// of the grant is checked again.
    pub(crate) fn needs_wallet_check(&self) -> bool {
        self.wallet && !self.registered
    }
}

/// When and what to settle.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    pub(crate) payee_threshold: U256,
    pub(crate) book_threshold: U256,
    /// Settle anything at all once this much time passed since the last batch.
    pub(crate) interval_due: bool,
    /// Below this a voucher is dust and waits unless urgent.
    pub(crate) dust: U256,
    pub(crate) gas_budget: u64,
    pub(crate) max_items: usize,
}

/// Why a batch is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    Urgent,
    PayeeThreshold,
    BookThreshold,
    Interval,
}

/// Gas of one item before simulation tells: a grant's first settlement verifies its signature and writes a slot.
const ITEM_GAS_NEW_GRANT: u64 = 60_000;
const ITEM_GAS: u64 = 35_000;
/// Gas of the transaction around the items.
pub(crate) const BATCH_BASE_GAS: u64 = 30_000;

/// The gas the vault gives a smart wallet's `isValidSignature`: `ERC1271_GAS` in `contracts/src/BeatStreamVault.sol`.
/// A wallet can be cheap when simulated and burn all of it when mined, so every item that may need a wallet check
/// adds all of it to the gas limit.
pub(crate) const WALLET_CHECK_GAS: u64 = 150_000;

/// The gas the vault wants left before each item, or it stops the batch with `BatchCutShort`: `ITEM_GAS` in
/// `contracts/src/BeatStreamVault.sol`.
pub(crate) const VAULT_ITEM_GAS: u64 = 80_000;

/// The gas limit of a batch whose simulation used `simulated` gas, holding `wallet_checks` items that may need a
/// wallet check.
///
/// The margin over the simulation, for state that moves before the block, is 25% + 20,000, and at least the vault's
/// per-item guard: the vault stops the batch before an item when less than [`VAULT_ITEM_GAS`] is left, so a margin
/// below it would cut off the last items of a small batch. The cap (1.25 × `gas_budget`) trims only that margin:
/// never below the simulation plus the guard, and never the wallet allowances, added after it. Cutting an allowance
/// would let a wallet that burns it stop the batch before the honest items after it; the budget is kept instead
/// by counting the allowances when the batch is chosen ([`fit`]) and when it is checked after simulation.
pub(crate) fn gas_limit(simulated: u64, wallet_checks: u64, gas_budget: u64) -> u64 {
    let limit = simulated + (simulated / 4 + 20_000).max(VAULT_ITEM_GAS);
    let cap = (gas_budget + gas_budget / 4).max(simulated + VAULT_ITEM_GAS);
    limit.min(cap) + wallet_checks * WALLET_CHECK_GAS
}

/// Whether a batch is due, and the vouchers it should hold, most valuable first (urgent ones before all).
pub(crate) fn plan(mut book: Vec<Candidate>, policy: &Policy) -> Option<(Trigger, Vec<Candidate>)> {
    book.retain(|c| c.urgent || c.value >= policy.dust);
    if book.is_empty() {
        return None;
    }
    let mut per_payee: HashMap<Address, U256> = HashMap::new();
    let mut total = U256::ZERO;
    for c in &book {
        *per_payee.entry(c.payee).or_default() += c.value;
        total += c.value;
    }
    let trigger = if book.iter().any(|c| c.urgent) {
        Trigger::Urgent
    } else if per_payee.values().any(|v| *v >= policy.payee_threshold) {
        Trigger::PayeeThreshold
    } else if total >= policy.book_threshold {
        Trigger::BookThreshold
    } else if policy.interval_due {
        Trigger::Interval
    } else {
        return None;
    };
    book.sort_by(|a, b| b.urgent.cmp(&a.urgent).then(b.value.cmp(&a.value)));
    Some((trigger, fit(book, policy)))
}

/// The first vouchers of `sorted` that fit the gas budget and the item limit, in order; a voucher too big for what
/// is left is passed over for smaller ones after it. Items that may need a wallet check count their allowance.
pub(crate) fn fit(sorted: Vec<Candidate>, policy: &Policy) -> Vec<Candidate> {
    let mut gas = BATCH_BASE_GAS;
    let mut grants_seen = std::collections::HashSet::new();
    let mut chosen = Vec::new();
    for c in sorted {
        if chosen.len() == policy.max_items {
            break;
        }
        let mut item_gas = if !c.registered && !grants_seen.contains(&c.grant_id) {
            ITEM_GAS_NEW_GRANT
        } else {
            ITEM_GAS
        };
        if c.needs_wallet_check() {
            item_gas += WALLET_CHECK_GAS;
        }
        if gas + item_gas > policy.gas_budget {
            continue;
        }
        gas += item_gas;
        grants_seen.insert(c.grant_id);
        chosen.push(c);
    }
    chosen
}

/// The batch's items in the order the vault settles them most cheaply: a grant's items together, its most valuable
/// payee first (the first payee of a grant keeps its settled amount in the grant's own slot for good), and the grant
/// signature sent only with the first item of a grant the vault has not registered. Later items of that grant find
/// it registered by the first, so their signature would be calldata paid for nothing.
pub(crate) fn order(chosen: &[Candidate]) -> Vec<(Candidate, SettlementItem)> {
    let mut sorted: Vec<&Candidate> = chosen.iter().collect();
    // Grants by their most valuable item, then items by value.
    let mut grant_value: HashMap<B256, U256> = HashMap::new();
    for c in chosen {
        let best = grant_value.entry(c.grant_id).or_default();
        *best = (*best).max(c.value);
    }
    sorted.sort_by(|a, b| {
        grant_value[&b.grant_id]
            .cmp(&grant_value[&a.grant_id])
            .then(a.grant_id.cmp(&b.grant_id))
            .then(b.value.cmp(&a.value))
            .then(a.payee.cmp(&b.payee))
    });
    let mut signed_grants = std::collections::HashSet::new();
    sorted
        .into_iter()
        .map(|c| {
            let needs_signature = !c.registered && signed_grants.insert(c.grant_id);
            let item = SettlementItem {
                grant: c.grant.clone(),
                grantSignature: if needs_signature {
                    c.grant_signature.clone()
                } else {
                    Bytes::new()
                },
                payee: c.payee,
                cumulative: c.cumulative,
                voucherSignature: c.signature.clone(),
            };
            (c.clone(), item)
        })
        .collect()
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(grant: u8, payee: u8, value: u64, registered: bool, urgent: bool) -> Candidate {
        Candidate {
            grant_id: B256::repeat_byte(grant),
            grant: SessionGrant {
                listener: Address::repeat_byte(grant),
                sessionKey: Address::ZERO,
                cap: U256::MAX,
                expiresAt: 0,
                nonce: 0,
            },
            grant_signature: Bytes::from(vec![grant; 65]),
            registered,
            payee: Address::repeat_byte(payee),
            cumulative: U256::from(value),
            signature: Bytes::from(vec![1; 65]),
            value: U256::from(value),
            voucher_at: 0.0,
            urgent,
            wallet: false,
        }
    }

    fn policy() -> Policy {
        Policy {
            payee_threshold: U256::from(1_000),
            book_threshold: U256::from(2_000),
            interval_due: false,
            dust: U256::from(10),
            gas_budget: 1_000_000,
            max_items: 100,
        }
    }

    #[test]
    fn waits_below_every_threshold_and_fires_on_each() {
        let small = vec![candidate(1, 1, 400, true, false), candidate(2, 2, 400, true, false)];
        assert!(plan(small.clone(), &policy()).is_none());

        let mut p = policy();
        p.interval_due = true;
        assert_eq!(plan(small.clone(), &p).unwrap().0, Trigger::Interval);

        let mut one_payee = small.clone();
        one_payee.push(candidate(3, 1, 700, true, false));
        assert_eq!(plan(one_payee, &policy()).unwrap().0, Trigger::PayeeThreshold);

        let book: Vec<_> = (1..=6).map(|i| candidate(i, i, 400, true, false)).collect();
        assert_eq!(plan(book, &policy()).unwrap().0, Trigger::BookThreshold);

        let mut urgent = small;
        urgent.push(candidate(9, 9, 5, true, true));
        let (trigger, chosen) = plan(urgent, &policy()).unwrap();
        assert_eq!(trigger, Trigger::Urgent);
        // Urgent first, even though it is worth least (and below the dust line).
        assert_eq!(chosen[0].grant_id, B256::repeat_byte(9));
    }

    #[test]
    fn leaves_dust_and_fits_the_gas_budget_most_valuable_first() {
        let mut p = policy();
        p.interval_due = true;
        p.gas_budget = BATCH_BASE_GAS + 2 * ITEM_GAS;
        let book = vec![
            candidate(1, 1, 5, true, false), // dust
            candidate(2, 2, 100, true, false),
            candidate(3, 3, 300, true, false),
            candidate(4, 4, 200, true, false),
        ];
        let (_, chosen) = plan(book, &p).unwrap();
        let values: Vec<_> = chosen.iter().map(|c| c.value.to::<u64>()).collect();
        assert_eq!(values, vec![300, 200]);
    }

    #[test]
    fn groups_grants_and_signs_each_new_grant_once() {
        let chosen = vec![
            candidate(1, 1, 100, false, false),
            candidate(2, 1, 500, true, false),
            candidate(1, 2, 300, false, false),
        ];
        let items = order(&chosen);
        let shape: Vec<_> = items
            .iter()
            .map(|(c, i)| (c.grant_id[0], c.value.to::<u64>(), i.grantSignature.len()))
            .collect();
        // Grant 2 (best item 500) first, with no signature (registered); then grant 1, best payee first, signed once.
        assert_eq!(shape, vec![(2, 500, 0), (1, 300, 65), (1, 100, 0)]);
    }

    #[test]
    fn wallet_checks_count_their_allowance_when_fitting() {
        let mut p = policy();
        p.gas_budget = BATCH_BASE_GAS + ITEM_GAS_NEW_GRANT + WALLET_CHECK_GAS + ITEM_GAS;
        let mut wallet = candidate(1, 1, 300, false, false);
        wallet.wallet = true;
        // The wallet's later item, and an honest registered one.
        let mut wallet_again = candidate(1, 2, 200, false, false);
        wallet_again.wallet = true;
        let honest = candidate(2, 3, 100, true, false);
        assert!(wallet.needs_wallet_check() && wallet_again.needs_wallet_check());
        let chosen = fit(vec![wallet.clone(), wallet_again, honest], &p);
        // The second wallet item needs another allowance, which does not fit; the honest one does.
        let values: Vec<_> = chosen.iter().map(|c| c.value.to::<u64>()).collect();
        assert_eq!(values, vec![300, 100]);
        // A registered grant is never checked again, whatever the listener is.
        wallet.registered = true;
        assert!(!wallet.needs_wallet_check());
    }

    #[test]
    fn the_gas_limit_keeps_the_guard_and_every_wallet_allowance_past_the_cap() {
        // A big batch: simulated + 25% + 20,000, as before.
        assert_eq!(gas_limit(1_000_000, 0, 6_000_000), 1_270_000);
        // A small batch: at least the vault's per-item guard over the simulation.
        assert_eq!(gas_limit(60_000, 0, 6_000_000), 60_000 + VAULT_ITEM_GAS);
        // Each wallet check adds its whole allowance.
        assert_eq!(gas_limit(1_000_000, 2, 6_000_000), 1_270_000 + 2 * WALLET_CHECK_GAS);
        // The cap trims the margin, never the guard or an allowance.
        assert_eq!(gas_limit(1_000_000, 0, 900_000), 1_125_000);
        assert_eq!(gas_limit(1_000_000, 0, 100_000), 1_000_000 + VAULT_ITEM_GAS);
        assert_eq!(gas_limit(1_000_000, 3, 900_000), 1_125_000 + 3 * WALLET_CHECK_GAS);
    }
}
