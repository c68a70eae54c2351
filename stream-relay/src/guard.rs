//! The balance guard and the revocation check, written once: what a listener may still spend, whether a grant is
//! revoked, and the decision on one voucher.
//!
//! The state is read by one statement, [`crate::db::state::read`], both at `hello` (by the [`crate::db::store`], for
//! `ready`) and in every group commit (by the [`crate::writer`], under the listeners' advisory locks). The
//! decisions, [`check_voucher`] and [`check_yellow_state`], are pure functions of that state: property tests drive
//! them without Postgres.
//!
//! What may be spent is exactly the vault's `spendableOf`: the listener's `available` funds (the indexer's
//! `listener_accounts.available`). Thawing funds still settle what was acked before the withdrawal request, but they
//! leave at `thawEnd`, which can come sooner than the withdrawal delay after a new ack, so they back no new voucher
//! (`docs/DECISIONS.md`, "The funding rule").
//!
//! A grant is revoked for the relay as soon as the indexer has mirrored the listener's `revokeGrant` (a
//! `grant_revocations` row) or a `revokeGrantsBelow` raising the listener's newest nonce floor above the grant's
//! nonce (`listener_nonce_floors.floor`, not waiting for `floor_from`). The vault itself refuses such vouchers only
//! from the revocation's `effective_at`, the withdrawal delay later, so vouchers the relay acked before stay payable.

use std::{collections::HashMap, fmt};

use alloy::primitives::{Address, B256, U256};

/// Why the relay holds a grant revoked, as the indexer mirrors the vault's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// The listener revoked this grant (`revokeGrant`, event `GrantRevoked`).
    Grant,
    /// The listener raised its nonce floor above the grant's nonce (`revokeGrantsBelow`, event `NonceFloorRaised`).
    NonceFloor {
        /// The listener's newest floor.
        floor: u64,
    },
}

impl fmt::Display for Revocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Grant => f.write_str("the listener revoked this grant"),
            Self::NonceFloor { floor } => {
                write!(f, "the listener revoked every grant with a nonce below {floor}")
            }
        }
    }
}

/// A listener's funds as the guard counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Funds {
    /// The vault's `available` (its `spendableOf`); thawing funds are not counted.
    pub available: U256,
    /// Σ over the listener's pairs of (newest stored voucher − settled), across every grant and relay.
    pub owed: U256,
}

impl Funds {
    /// What new vouchers may still take: available funds not owed yet.
    pub fn spendable(self) -> U256 {
        self.available.saturating_sub(self.owed)
    }
}

/// A pair's stored voucher (or Yellow allocation) and settled amount.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PairState {
    pub(crate) voucher: U256,
    pub(crate) settled: U256,
}

impl PairState {
    /// The newest cumulative of the pair, stored or settled.
    pub(crate) fn current(self) -> U256 {
        self.voucher.max(self.settled)
    }
}

/// What one read covers.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    /// (grant or app session, payee) pairs.
    pub(crate) pairs: Vec<(B256, Address)>,
    /// Listeners whose funds to read.
    pub(crate) listeners: Vec<Address>,
    /// Grants whose total and revocation to read: (grant id, its listener, its nonce).
    pub(crate) grants: Vec<(B256, Address, u64)>,
    /// Yellow app sessions whose version to read.
    pub(crate) apps: Vec<B256>,
    /// Listeners whose guard epoch alone to read (held leases decided in memory in the same commit).
    pub(crate) epochs: Vec<Address>,
    /// Tips to look up by (grant, tip id): whether one is stored already.
    pub(crate) tips: Vec<(B256, U256)>,
}

impl Keys {
    /// Sorts and removes repeats (the listeners' order is also the lock order).
    pub(crate) fn dedup(&mut self) {
        dedup(&mut self.pairs);
        dedup(&mut self.listeners);
        dedup(&mut self.grants);
        dedup(&mut self.apps);
        dedup(&mut self.epochs);
        dedup(&mut self.tips);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pairs.is_empty()
            && self.listeners.is_empty()
            && self.grants.is_empty()
            && self.apps.is_empty()
            && self.epochs.is_empty()
            && self.tips.is_empty()
    }
}

/// The state the guard decides on.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Per pair.
    pub(crate) pairs: HashMap<(B256, Address), PairState>,
    /// Per listener.
    pub(crate) funds: HashMap<Address, Funds>,
    /// Per grant: the sum over its payees of the newest cumulative (what counts against the cap).
    pub(crate) totals: HashMap<B256, U256>,
    /// Revoked grants.
    pub(crate) revoked: HashMap<B256, Revocation>,
    /// Yellow app sessions: (newest stored version, open).
    pub(crate) apps: HashMap<B256, (u64, bool)>,
    /// Per listener: its guard epoch (`guard_epochs`, 0 before its first change).
    pub(crate) epochs: HashMap<Address, i64>,
    /// Per listener: the leases other relays hold for it ([`crate::lease`]).
    pub(crate) leased_listener: HashMap<Address, U256>,
    /// Per grant: the leases other relays hold for it.
    pub(crate) leased_grant: HashMap<B256, U256>,
    /// Tips stored already, by (grant, tip id).
    pub(crate) tips: HashMap<(B256, U256), StoredTip>,
}

/// What identifies a stored tip's content: a tip sent again with the same content is the same tip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoredTip {
    pub(crate) payee: Address,
    pub(crate) amount: U256,
    /// `keccak256` of the message bytes.
    pub(crate) message: B256,
}

/// Why a voucher (or Yellow state) is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The pair already has this cumulative or more (stored by another relay, or settled).
    Stale {
        /// What the pair has.
        stored: U256,
    },
    /// The listener cannot pay it.
    InsufficientFunds {
        /// Funds not yet owed.
        available: U256,
        /// The increase asked for.
        needed: U256,
    },
    /// The grant's vouchers would pass its cap.
    CapExceeded {
        /// The cap.
        cap: U256,
        /// The total it would reach.
        total: U256,
    },
    /// The grant is revoked (by id or by the listener's nonce floor), as the indexer mirrors it.
    Revoked(Revocation),
    /// The Yellow app session is not at the version before this state (or no longer open).
    Version {
        /// The version it expects next; zero when it is closed.
        expected: u64,
    },
    /// A different tip is stored under the same (grant, tip id).
    DuplicateTip,
    /// The commit failed; nothing was stored.
    Storage,
}

/// The guard's decision on a voucher raising a pair to `cumulative`: `Ok` with the increase it adds to what the
/// listener owes and to the grant's total, or why it is refused. A revoked grant is refused first, whatever else
/// holds; then a voucher that does not raise the pair, one the listener's available funds cannot back, and one
/// that takes the grant past its cap.
pub(crate) fn check_voucher(
    revoked: Option<Revocation>,
    pair: PairState,
    funds: Funds,
    total: U256,
    cap: U256,
    cumulative: U256,
) -> std::result::Result<U256, Refusal> {
    if let Some(revocation) = revoked {
        return Err(Refusal::Revoked(revocation));
    }
    let current = pair.current();
    if cumulative <= current {
        return Err(Refusal::Stale { stored: current });
    }
    let increase = cumulative - current;
    if funds.owed + increase > funds.available {
        return Err(Refusal::InsufficientFunds { available: funds.spendable(), needed: increase });
    }
    if total + increase > cap {
        return Err(Refusal::CapExceeded { cap, total: total + increase });
    }
    Ok(increase)
}

/// The guard's decision on a tip of `amount`: `Ok(true)` to store it, `Ok(false)` when the very same tip is stored
/// already (sent again after a lost `tipAck`: acked again, nothing written), or why it is refused. The same order as
/// a voucher's: a revoked grant first, then a different tip under the same id, then funds (`owed` counts every
/// unsettled tip and voucher) and the cap (`total` counts every tip of the grant).
pub(crate) fn check_tip(
    revoked: Option<Revocation>,
    stored: Option<StoredTip>,
    tip: StoredTip,
    funds: Funds,
    total: U256,
    cap: U256,
) -> std::result::Result<bool, Refusal> {
    if let Some(revocation) = revoked {
        return Err(Refusal::Revoked(revocation));
    }
    match stored {
        Some(stored) if stored == tip => return Ok(false),
        Some(_) => return Err(Refusal::DuplicateTip),
        None => {}
    }
    if funds.owed.saturating_add(tip.amount) > funds.available {
        return Err(Refusal::InsufficientFunds {
            available: funds.spendable(),
            needed: tip.amount,
        });
    }
    if total.saturating_add(tip.amount) > cap {
        return Err(Refusal::CapExceeded { cap, total: total.saturating_add(tip.amount) });
    }
    Ok(true)
}

/// The decision on a Yellow state of version `version` for an app session whose newest stored version and
/// openness are `app`: only the next version of an open session is stored.
pub(crate) fn check_yellow_state(
    app: (u64, bool),
    version: u64,
) -> std::result::Result<(), Refusal> {
    let (current, open) = app;
    if !open || version != current + 1 {
        return Err(Refusal::Version { expected: if open { current + 1 } else { 0 } });
    }
    Ok(())
}

fn dedup<T: Ord>(v: &mut Vec<T>) {
    v.sort_unstable();
    v.dedup();
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn funds(available: u64, owed: u64) -> Funds {
        Funds { available: U256::from(available), owed: U256::from(owed) }
    }

    fn pair(voucher: u64, settled: u64) -> PairState {
        PairState { voucher: U256::from(voucher), settled: U256::from(settled) }
    }

    const CAP: U256 = U256::from_limbs([1_000_000, 0, 0, 0]);

    fn tip(amount: u64, message: u8) -> StoredTip {
        StoredTip {
            payee: Address::repeat_byte(7),
            amount: U256::from(amount),
            message: B256::repeat_byte(message),
        }
    }

    #[test]
    fn a_tip_is_refused_past_funds_or_cap_and_acked_again_when_sent_again() {
        let t = tip(500, 1);
        assert_eq!(check_tip(None, None, t, funds(1_000, 500), U256::ZERO, CAP), Ok(true));
        assert_eq!(
            check_tip(None, None, t, funds(1_000, 501), U256::ZERO, CAP),
            Err(Refusal::InsufficientFunds { available: U256::from(499), needed: U256::from(500) })
        );
        assert_eq!(
            check_tip(None, None, t, funds(10_000_000, 0), CAP - U256::from(499), CAP),
            Err(Refusal::CapExceeded { cap: CAP, total: CAP + U256::from(1) })
        );
        // The same tip again (a lost tipAck) is acked without a second write, even with nothing left to spend;
        // another tip under its id is refused.
        assert_eq!(check_tip(None, Some(t), t, funds(0, 0), CAP, CAP), Ok(false));
        assert_eq!(
            check_tip(None, Some(t), tip(500, 2), funds(1_000, 0), U256::ZERO, CAP),
            Err(Refusal::DuplicateTip)
        );
        assert_eq!(
            check_tip(None, Some(t), tip(501, 1), funds(1_000, 0), U256::ZERO, CAP),
            Err(Refusal::DuplicateTip)
        );
        assert_eq!(
            check_tip(Some(Revocation::Grant), None, t, funds(1_000, 0), U256::ZERO, CAP),
            Err(Refusal::Revoked(Revocation::Grant))
        );
    }

    #[test]
    fn a_voucher_within_available_funds_is_accepted() {
        let got = check_voucher(
            None,
            pair(100, 0),
            funds(500, 100),
            U256::from(100),
            CAP,
            U256::from(300),
        );
        assert_eq!(got, Ok(U256::from(200)));
    }

    #[test]
    fn owed_is_counted_against_available_only() {
        // 500 available, 400 owed: an increase of 101 does not fit, 100 does.
        let refused =
            check_voucher(None, pair(0, 0), funds(500, 400), U256::ZERO, CAP, U256::from(101));
        assert_eq!(
            refused,
            Err(Refusal::InsufficientFunds { available: U256::from(100), needed: U256::from(101) })
        );
        let accepted =
            check_voucher(None, pair(0, 0), funds(500, 400), U256::ZERO, CAP, U256::from(100));
        assert_eq!(accepted, Ok(U256::from(100)));
    }

    #[test]
    fn settled_amounts_raise_the_base() {
        // Settled 300 (the indexer saw it before the relay's voucher row was raised): only 50 more is new.
        let got =
            check_voucher(None, pair(200, 300), funds(50, 0), U256::ZERO, CAP, U256::from(350));
        assert_eq!(got, Ok(U256::from(50)));
        let stale =
            check_voucher(None, pair(200, 300), funds(50, 0), U256::ZERO, CAP, U256::from(300));
        assert_eq!(stale, Err(Refusal::Stale { stored: U256::from(300) }));
    }

    #[test]
    fn a_revoked_grant_is_refused_before_anything_else() {
        for revocation in [Revocation::Grant, Revocation::NonceFloor { floor: 9 }] {
            // Even a voucher that would otherwise be stale, unfunded or over the cap.
            for (p, f, c) in [(pair(0, 0), funds(500, 0), 100), (pair(300, 0), funds(0, 0), 200)] {
                let got = check_voucher(Some(revocation), p, f, U256::ZERO, CAP, U256::from(c));
                assert_eq!(got, Err(Refusal::Revoked(revocation)));
            }
        }
    }

    #[test]
    fn revocations_read_plainly() {
        assert_eq!(Revocation::Grant.to_string(), "the listener revoked this grant");
        assert_eq!(
            Revocation::NonceFloor { floor: 7 }.to_string(),
            "the listener revoked every grant with a nonce below 7"
        );
    }

    proptest! {
        /// Whatever the state, an accepted voucher never takes what is owed past the available funds nor the
        /// grant's total past its cap, and raises the pair by exactly the increase it reports.
        #[test]
        fn never_overspends(
            available in 0u64..10_000, owed in 0u64..10_000, voucher in 0u64..10_000, settled in 0u64..10_000,
            total in 0u64..20_000, cap in 0u64..20_000, cumulative in 0u64..20_000,
        ) {
            let p = pair(voucher, settled);
            let f = funds(available, owed);
            let (total, cap) = (U256::from(total), U256::from(cap));
            match check_voucher(None, p, f, total, cap, U256::from(cumulative)) {
                Ok(increase) => {
                    // Never lowers (nor repeats) a cumulative.
                    prop_assert!(increase > U256::ZERO);
                    prop_assert_eq!(p.current() + increase, U256::from(cumulative));
                    prop_assert!(f.owed + increase <= f.available);
                    prop_assert!(total + increase <= cap);
                }
                Err(Refusal::Stale { stored }) => prop_assert!(U256::from(cumulative) <= stored),
                Err(Refusal::InsufficientFunds { available, needed }) => {
                    prop_assert_eq!(available, f.spendable());
                    prop_assert!(needed > available);
                }
                Err(Refusal::CapExceeded { total: t, .. }) => prop_assert!(t > cap),
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }

        /// Only the next version of an open app session is stored; anything else says what is expected.
        #[test]
        fn yellow_states_only_advance_by_one(current in 0u64..1_000, open: bool, version in 0u64..1_002) {
            match check_yellow_state((current, open), version) {
                Ok(()) => prop_assert!(open && version == current + 1),
                Err(Refusal::Version { expected }) => {
                    prop_assert!(!open || version != current + 1);
                    prop_assert_eq!(expected, if open { current + 1 } else { 0 });
                }
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }
}
