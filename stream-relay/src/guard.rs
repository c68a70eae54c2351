//! The balance guard and the revocation check, written once: what a listener may still spend, whether a grant is
//! revoked, and the decision on one voucher.
//!
//! The state is read by one statement, [`read`], both at `hello` (by the [`crate::store`], for `ready`) and in
//! every group commit (by the [`crate::writer`], under the listeners' advisory locks). The decision,
//! [`check_voucher`], is a pure function of that state.
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

use crate::{Error, Result, store::parse_amount, writer::Refusal};

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
}

impl Keys {
    /// Sorts and removes repeats (the listeners' order is also the lock order).
    pub(crate) fn dedup(&mut self) {
        dedup(&mut self.pairs);
        dedup(&mut self.listeners);
        dedup(&mut self.grants);
        dedup(&mut self.apps);
    }

    fn is_empty(&self) -> bool {
        self.pairs.is_empty()
            && self.listeners.is_empty()
            && self.grants.is_empty()
            && self.apps.is_empty()
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
}

/// Reads everything in `keys` in one statement. In a group commit it runs after the locks are taken, as a new
/// statement, so its snapshot is taken under them.
pub(crate) async fn read<'e, E: sqlx::PgExecutor<'e>>(
    exec: E,
    chain_id: i64,
    keys: &Keys,
) -> Result<State> {
    let mut state = State::default();
    if keys.is_empty() {
        return Ok(state);
    }
    let rows: Vec<StateRow> = sqlx::query_as(READ_STATE)
        .bind(chain_id)
        .bind(keys.pairs.iter().map(|(g, _)| g.to_vec()).collect::<Vec<_>>())
        .bind(keys.pairs.iter().map(|(_, p)| p.to_vec()).collect::<Vec<_>>())
        .bind(keys.listeners.iter().map(|l| l.to_vec()).collect::<Vec<_>>())
        .bind(keys.grants.iter().map(|(g, _, _)| g.to_vec()).collect::<Vec<_>>())
        .bind(keys.apps.iter().map(|g| g.to_vec()).collect::<Vec<_>>())
        .bind(keys.grants.iter().map(|(_, l, _)| l.to_vec()).collect::<Vec<_>>())
        .bind(keys.grants.iter().map(|(_, _, n)| n.to_string()).collect::<Vec<_>>())
        .fetch_all(exec)
        .await?;
    let amount = |v: Option<String>| -> Result<U256> {
        Ok(v.as_deref().map(parse_amount).transpose()?.unwrap_or_default())
    };
    for (kind, key, payee, a, b) in rows {
        match (kind.as_str(), payee) {
            ("p", Some(payee)) => {
                let pair = PairState { voucher: amount(a)?, settled: amount(b)? };
                state.pairs.insert((B256::from_slice(&key), Address::from_slice(&payee)), pair);
            }
            ("l", _) => {
                let funds = Funds { available: amount(a)?, owed: amount(b)? };
                state.funds.insert(Address::from_slice(&key), funds);
            }
            ("g", _) => {
                state.totals.insert(B256::from_slice(&key), amount(a)?);
            }
            ("r", _) => {
                state.revoked.insert(B256::from_slice(&key), Revocation::Grant);
            }
            ("f", _) => {
                let floor = a
                    .as_deref()
                    .and_then(|f| f.parse().ok())
                    .ok_or_else(|| Error::Corrupt(format!("nonce floor {a:?} is not a uint64")))?;
                // A revocation by id says more; either refuses the grant.
                state
                    .revoked
                    .entry(B256::from_slice(&key))
                    .or_insert(Revocation::NonceFloor { floor });
            }
            ("y", _) => {
                let version = a.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
                state.apps.insert(B256::from_slice(&key), (version, b.as_deref() == Some("open")));
            }
            _ => return Err(Error::Corrupt(format!("unexpected state row {kind}"))),
        }
    }
    Ok(state)
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

/// One row of the combined read: `p` (grant, payee, voucher, settled), `l` (listener, available, owed), `g` (grant,
/// total), `r` (grant revoked by id), `f` (grant below its listener's nonce floor, the floor) or `y` (app session,
/// version, status).
type StateRow = (String, Vec<u8>, Option<Vec<u8>>, Option<String>, Option<String>);

/// Everything the guard needs in one statement ($1 chain id; pairs $2/$3; listeners $4; grants $5 with their
/// listeners $7 and nonces $8; app sessions $6). Settled amounts are looked up per pair, never hashed over the
/// whole table. A revocation counts only when it is the grant's own listener's.
const READ_STATE: &str = "
    SELECT 'p', t.g, t.p,
           coalesce((SELECT v.cumulative::text FROM vouchers v WHERE v.grant_id = t.g AND v.payee = t.p),
                    (SELECT y.paid::text FROM yellow_app_sessions y WHERE y.app_session_id = t.g AND y.payee = t.p)),
           (SELECT s.cumulative::text FROM settled_pairs s
            WHERE s.chain_id = $1 AND s.grant_id = t.g AND s.payee = t.p)
    FROM unnest($2::bytea[], $3::bytea[]) AS t(g, p)
    UNION ALL
    SELECT 'l', t.l, NULL,
           (SELECT a.available::text FROM listener_accounts a WHERE a.chain_id = $1 AND a.listener = t.l),
           (SELECT coalesce(sum(greatest(v.cumulative - coalesce(
                       (SELECT s.cumulative FROM settled_pairs s
                        WHERE s.chain_id = $1 AND s.grant_id = v.grant_id AND s.payee = v.payee), 0), 0)), 0)::text
            FROM vouchers v WHERE v.listener = t.l)
    FROM unnest($4::bytea[]) AS t(l)
    UNION ALL
    SELECT 'g', t.g, NULL,
           (SELECT coalesce(sum(greatest(coalesce(v.cumulative, 0), coalesce(s.cumulative, 0))), 0)::text
            FROM (SELECT payee, cumulative FROM vouchers WHERE grant_id = t.g) v
            FULL JOIN (SELECT payee, cumulative FROM settled_pairs WHERE chain_id = $1 AND grant_id = t.g) s
            USING (payee)),
           NULL
    FROM unnest($5::bytea[]) AS t(g)
    UNION ALL
    SELECT 'r', t.g, NULL, NULL, NULL
    FROM unnest($5::bytea[], $7::bytea[]) AS t(g, l)
    WHERE EXISTS (SELECT 1 FROM grant_revocations r
                  WHERE r.chain_id = $1 AND r.grant_id = t.g AND r.listener = t.l)
    UNION ALL
    SELECT 'f', t.g, NULL, f.floor::text, NULL
    FROM unnest($5::bytea[], $7::bytea[], $8::text[]) AS t(g, l, n)
    JOIN listener_nonce_floors f ON f.chain_id = $1 AND f.listener = t.l
    WHERE t.n::numeric < f.floor
    UNION ALL
    SELECT 'y', y.app_session_id, NULL, y.version::text, y.status
    FROM yellow_app_sessions y WHERE y.app_session_id = ANY($6::bytea[])";

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
    }
}
