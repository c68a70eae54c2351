//! Budgets leased to this relay, one per grant: the balance guard kept incrementally
//! (`docs/DECISIONS.md`, "Budgets leased to relays").
//!
//! Reading a listener's funds, debts, revocations and the grant's total at every group commit cost Postgres more
//! than storing the voucher. Instead, when a voucher's grant has no lease (or too little), the writer reads that
//! state under the listener's advisory lock, as before, decides the voucher, and leases itself a budget for the
//! grant: what it may still add to the grant's vouchers before it must read again. The lease is the least of
//!
//! - what the listener can still spend: available funds − what its stored vouchers owe − every other relay's leases
//!   for the listener − this relay's other leases for it;
//! - what the grant's cap still allows: cap − its total − every other relay's leases for the grant;
//! - `multiple − 1` times the voucher's increase (so about `multiple` seconds of playing at one voucher a second).
//!
//! The lease is written to `relay_leases` in the same transaction, under the same lock, so another relay counts
//! it whole when it leases itself: the sum of what every relay acks never passes the listener's funds nor the
//! grant's cap (a consumed part of another relay's lease is counted twice until that relay reads again, which
//! only errs on the side of refusing).
//!
//! A voucher within its grant's lease is decided here, in memory, and stored by one statement that also checks
//! that the listener's guard epoch is the one read with the lease (`guard_epochs`, raised by triggers when its
//! funds fall, a grant is revoked or its nonce floor rises). If it changed, nothing is written and the voucher is
//! decided again under the lock on fresh state: a revocation or a withdrawal request the indexer stored before the
//! commit still stops the next voucher.
//!
//! [`Leases`] is one writer's memory. Listeners are sharded across writers, so each listener's leases are in one
//! writer. It is forgotten whole whenever a commit fails (the transaction's effects are unknown).

use std::collections::HashMap;

use alloy::primitives::{Address, B256, U256};

use crate::guard::Funds;

/// A (grant, payee) pair.
type PairKey = (B256, Address);

/// The default lease, in multiples of the voucher's increase (`--relay-lease-beats`).
pub const DEFAULT_MULTIPLE: u32 = 60;

/// A grant this relay holds a lease for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Held {
    /// The grant's listener.
    pub(crate) listener: Address,
    /// What this relay may still add to the grant's vouchers without reading again.
    pub(crate) remaining: U256,
}

/// A listener this relay holds leases for.
#[derive(Clone, Debug, Default)]
struct Listener {
    /// Its guard epoch when the leases were read.
    epoch: i64,
    /// The grants held.
    grants: Vec<B256>,
}

/// What a fast decision changed, to put back if the commit finds an epoch changed.
#[derive(Debug, Default)]
pub(crate) struct Undo {
    grants: Vec<(B256, U256)>,
    pairs: Vec<(PairKey, Option<U256>)>,
}

/// One writer's leases and the pairs of their grants.
#[derive(Debug, Default)]
pub(crate) struct Leases {
    grants: HashMap<B256, Held>,
    listeners: HashMap<Address, Listener>,
    /// Per pair of a held grant: the newest cumulative stored (by this relay) or read (stored or settled).
    pairs: HashMap<PairKey, U256>,
}

/// What the fast path makes of a voucher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fast {
    /// Within the lease: accept, raising the pair by this much.
    Accept(U256),
    /// The pair already has this cumulative or more.
    Stale(U256),
    /// Not decidable here: no lease, an unknown pair, or more than the lease left.
    Read,
}

impl Leases {
    /// The listener's epoch, if this relay holds a lease for it.
    pub(crate) fn epoch(&self, listener: &Address) -> Option<i64> {
        self.listeners.get(listener).map(|l| l.epoch)
    }

    /// The pair's newest cumulative as known here.
    pub(crate) fn pair(&self, key: &PairKey) -> Option<U256> {
        self.pairs.get(key).copied()
    }

    /// What a voucher raising `key` to `cumulative` would be on the fast path, with `spent` already taken from the
    /// grant's lease earlier in the batch and `pair` the pair's cumulative as the batch left it (if it did).
    pub(crate) fn fast(
        &self,
        key: &PairKey,
        cumulative: U256,
        spent: U256,
        pair: Option<U256>,
    ) -> Fast {
        let (Some(held), Some(current)) = (self.grants.get(&key.0), pair.or(self.pair(key))) else {
            return Fast::Read;
        };
        if cumulative <= current {
            return Fast::Stale(current);
        }
        let increase = cumulative - current;
        if increase <= held.remaining.saturating_sub(spent) {
            Fast::Accept(increase)
        } else {
            Fast::Read
        }
    }

    /// Takes `increase` from the grant's lease and sets the pair to `cumulative`, noting both in `undo`.
    pub(crate) fn take(&mut self, key: PairKey, cumulative: U256, increase: U256, undo: &mut Undo) {
        if let Some(held) = self.grants.get_mut(&key.0) {
            undo.grants.push((key.0, held.remaining));
            held.remaining -= increase;
        }
        undo.pairs.push((key, self.pairs.insert(key, cumulative)));
    }

    /// Puts back what [`Leases::take`] changed.
    pub(crate) fn restore(&mut self, undo: Undo) {
        for (grant, remaining) in undo.grants.into_iter().rev() {
            if let Some(held) = self.grants.get_mut(&grant) {
                held.remaining = remaining;
            }
        }
        for (key, before) in undo.pairs.into_iter().rev() {
            match before {
                Some(c) => self.pairs.insert(key, c),
                None => self.pairs.remove(&key),
            };
        }
    }

    /// What this relay's leases for `listener` other than `grant`'s still allow.
    pub(crate) fn held_besides(&self, listener: &Address, grant: &B256) -> U256 {
        self.listeners.get(listener).map_or(U256::ZERO, |l| {
            l.grants
                .iter()
                .filter(|g| *g != grant)
                .filter_map(|g| self.grants.get(g))
                .map(|h| h.remaining)
                .fold(U256::ZERO, U256::saturating_add)
        })
    }

    /// Holds `remaining` for `grant` of `listener`, read at `epoch`, and the pair at `cumulative`.
    pub(crate) fn hold(
        &mut self,
        grant: B256,
        listener: Address,
        remaining: U256,
        epoch: i64,
        pair: (Address, U256),
    ) {
        self.grants.insert(grant, Held { listener, remaining });
        let l = self.listeners.entry(listener).or_default();
        l.epoch = epoch;
        if !l.grants.contains(&grant) {
            l.grants.push(grant);
        }
        self.pairs.insert((grant, pair.0), pair.1);
    }

    /// Sets a held listener's epoch (read again under its lock).
    pub(crate) fn set_epoch(&mut self, listener: &Address, epoch: i64) {
        if let Some(l) = self.listeners.get_mut(listener) {
            l.epoch = epoch;
        }
    }

    /// Notes a pair's cumulative for a held grant (a voucher decided on fresh state).
    pub(crate) fn set_pair(&mut self, key: PairKey, cumulative: U256) {
        if self.grants.contains_key(&key.0) {
            self.pairs.insert(key, cumulative);
        }
    }

    /// The leases held for `listener`: (grant, remaining), to write back.
    pub(crate) fn held_for(&self, listener: &Address) -> Vec<(B256, U256)> {
        self.listeners.get(listener).map_or_else(Vec::new, |l| {
            l.grants.iter().filter_map(|g| self.grants.get(g).map(|h| (*g, h.remaining))).collect()
        })
    }

    /// Gives up the lease of `grant` and forgets its pairs.
    pub(crate) fn release(&mut self, grant: &B256) {
        let Some(held) = self.grants.remove(grant) else { return };
        self.pairs.retain(|(g, _), _| g != grant);
        if let Some(l) = self.listeners.get_mut(&held.listener) {
            l.grants.retain(|g| g != grant);
            if l.grants.is_empty() {
                self.listeners.remove(&held.listener);
            }
        }
    }

    /// Forgets every lease of `listener` (its epoch changed: they are read again under the lock).
    pub(crate) fn forget(&mut self, listener: &Address) {
        if let Some(l) = self.listeners.remove(listener) {
            for g in l.grants {
                self.grants.remove(&g);
                self.pairs.retain(|(pg, _), _| *pg != g);
            }
        }
    }

    /// Grants held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.grants.len()
    }
}

/// The lease left after a voucher adding `increase` was accepted on fresh state: `multiple − 1` increases, if that
/// leaves at least as much again both of what the listener can still spend (`funds`, whose `owed` already counts
/// every lease but this grant's, and not yet `increase`) and of what the grant's cap allows (`total`, counting every
/// other relay's lease for it, not yet `increase`); otherwise none. So other devices and relays of the listener
/// always find a lease's worth unleased, and once funds or cap run low every voucher is decided on fresh state
/// under the lock, as if there were no leases: the last of a balance is spent exactly.
pub(crate) fn lease_after(
    funds: Funds,
    total: U256,
    cap: U256,
    increase: U256,
    multiple: u32,
) -> U256 {
    let spendable = funds.spendable().saturating_sub(increase);
    let cap_room = cap.saturating_sub(total).saturating_sub(increase);
    let chunk = increase.saturating_mul(U256::from(multiple.saturating_sub(1)));
    let twice = chunk.saturating_mul(U256::from(2));
    if spendable >= twice && cap_room >= twice { chunk } else { U256::ZERO }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const L: Address = Address::repeat_byte(1);
    const G: B256 = B256::repeat_byte(2);
    const P: Address = Address::repeat_byte(3);

    fn u(v: u64) -> U256 {
        U256::from(v)
    }

    #[test]
    fn a_lease_is_a_chunk_only_while_twice_as_much_is_left() {
        // Spendable after the voucher: 10,000 − 100 − 10 = 9,890; a chunk of 59 × 10 = 590 fits twice.
        let funds = Funds { available: u(10_000), owed: u(100) };
        assert_eq!(lease_after(funds, U256::ZERO, u(100_000), u(10), 60), u(590));
        // 2 × 890 > 9,890? No: 1,780 fits; 2 × 9,990 does not.
        assert_eq!(lease_after(funds, U256::ZERO, u(100_000), u(10), 90), u(890));
        assert_eq!(lease_after(funds, U256::ZERO, u(100_000), u(10), 1_000), U256::ZERO);
        // The cap's room decides the same way: 1,190 left after the voucher, 2 × 590 fits; 1,180 left, 2 × 600 not.
        assert_eq!(lease_after(funds, u(98_800), u(100_000), u(10), 60), u(590));
        assert_eq!(lease_after(funds, u(98_810), u(100_000), u(10), 61), U256::ZERO);
        // A multiple of one leases nothing.
        assert_eq!(lease_after(funds, U256::ZERO, u(100_000), u(10), 1), U256::ZERO);
    }

    #[test]
    fn the_fast_path_takes_from_the_lease_and_reads_past_it() {
        let mut leases = Leases::default();
        leases.hold(G, L, u(30), 7, (P, u(100)));
        assert_eq!(leases.epoch(&L), Some(7));
        assert_eq!(leases.fast(&(G, P), u(110), U256::ZERO, None), Fast::Accept(u(10)));
        assert_eq!(leases.fast(&(G, P), u(100), U256::ZERO, None), Fast::Stale(u(100)));
        assert_eq!(leases.fast(&(G, P), u(131), U256::ZERO, None), Fast::Read);
        // Earlier in the batch 25 were taken and the pair reached 125.
        assert_eq!(leases.fast(&(G, P), u(130), u(25), Some(u(125))), Fast::Accept(u(5)));
        assert_eq!(leases.fast(&(G, P), u(131), u(25), Some(u(125))), Fast::Read);
        // An unknown pair or grant is read.
        assert_eq!(leases.fast(&(G, L), u(1), U256::ZERO, None), Fast::Read);
        assert_eq!(leases.fast(&(B256::ZERO, P), u(1), U256::ZERO, None), Fast::Read);
    }

    #[test]
    fn undo_puts_back_what_was_taken() {
        let mut leases = Leases::default();
        leases.hold(G, L, u(30), 7, (P, u(100)));
        let mut undo = Undo::default();
        leases.take((G, P), u(110), u(10), &mut undo);
        leases.take((G, P), u(120), u(10), &mut undo);
        assert_eq!(leases.held_for(&L), vec![(G, u(10))]);
        leases.restore(undo);
        assert_eq!(leases.held_for(&L), vec![(G, u(30))]);
        assert_eq!(leases.pair(&(G, P)), Some(u(100)));
    }

    #[test]
    fn releasing_and_forgetting_drop_grants_pairs_and_listeners() {
        let mut leases = Leases::default();
        let g2 = B256::repeat_byte(9);
        leases.hold(G, L, u(30), 1, (P, u(100)));
        leases.hold(g2, L, u(20), 1, (P, u(5)));
        assert_eq!(leases.held_besides(&L, &G), u(20));
        leases.release(&G);
        assert_eq!(leases.pair(&(G, P)), None);
        assert_eq!(leases.held_besides(&L, &G), u(20));
        assert_eq!(leases.epoch(&L), Some(1));
        leases.release(&g2);
        assert_eq!(leases.epoch(&L), None);
        leases.hold(G, L, u(30), 1, (P, u(100)));
        leases.forget(&L);
        assert_eq!((leases.len(), leases.pair(&(G, P)), leases.epoch(&L)), (0, None, None));
    }

    proptest! {
        /// Whatever the funds, debts, cap and increase, an accepted voucher and its lease together never pass what
        /// the listener can spend nor what the cap allows.
        #[test]
        fn voucher_and_lease_stay_within_funds_and_cap(
            available in 0u64..1_000_000,
            owed in 0u64..1_000_000,
            total in 0u64..1_000_000,
            cap in 0u64..1_000_000,
            increase in 1u64..10_000,
            multiple in 1u32..200,
        ) {
            let funds = Funds { available: u(available), owed: u(owed) };
            prop_assume!(owed + increase <= available && total + increase <= cap);
            let lease = lease_after(funds, u(total), u(cap), u(increase), multiple);
            // As much again stays unleased.
            prop_assert!(u(owed + increase) + lease * u(2) <= u(available));
            prop_assert!(u(total + increase) + lease * u(2) <= u(cap));
            prop_assert!(lease <= u(increase) * u(u64::from(multiple)));
        }
    }
}
