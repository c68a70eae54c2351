//! The state the balance guard decides on, read by one statement: pairs, the listeners' funds and what they owe,
//! the grants' totals and revocations, Yellow app sessions' versions.
//!
//! What a listener owes (Σ over its pairs of newest stored voucher − settled) and what a grant has spent (Σ over its
//! payees of the newest cumulative, stored or settled) are written here once: [`grant_pairs!`] is the per-payee rule
//! both the guard's read and [`super::store`]'s `hello` use.

use alloy::primitives::{Address, B256, U256};

use super::parse_amount;
use crate::{
    Error, Result,
    guard::{Funds, Keys, PairState, Revocation, State, StoredTip},
};

/// The newest cumulative per payee of grant `$g` (an SQL expression), stored or settled: `(payee, cumulative)`
/// rows. `$1` is the chain id.
macro_rules! grant_pairs {
    ($g:literal) => {
        concat!(
            "SELECT payee, greatest(coalesce(v.cumulative, 0), coalesce(s.cumulative, 0)) AS cumulative
             FROM (SELECT payee, cumulative FROM vouchers WHERE grant_id = ",
            $g,
            ") v
             FULL JOIN (SELECT payee, cumulative FROM settled_pairs WHERE chain_id = $1 AND grant_id = ",
            $g,
            ") s USING (payee)"
        )
    };
}
pub(crate) use grant_pairs;

/// Reads everything in `keys` in one statement. In a group commit it runs after the locks are taken, as a new
/// statement, so its snapshot is taken under them.
///
/// `relay_id` is the reading relay: the leases of every other relay are summed per listener and per grant.
pub(crate) async fn read<'e, E: sqlx::PgExecutor<'e>>(
    exec: E,
    chain_id: i64,
    relay_id: &str,
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
        .bind(relay_id)
        .bind(keys.epochs.iter().map(|l| l.to_vec()).collect::<Vec<_>>())
        .bind(keys.tips.iter().map(|(g, _)| g.to_vec()).collect::<Vec<_>>())
        .bind(keys.tips.iter().map(|(_, t)| t.to_string()).collect::<Vec<_>>())
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
                state.leased_grant.insert(B256::from_slice(&key), amount(b)?);
            }
            ("e", _) => {
                let listener = Address::from_slice(&key);
                state.epochs.insert(listener, epoch(a.as_deref())?);
                if b.is_some() {
                    state.leased_listener.insert(listener, amount(b)?);
                }
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
            ("t", Some(payee)) => {
                // b is "<tip id>:<amount>:<the message, hex>".
                let b = b.unwrap_or_default();
                let mut parts = b.splitn(3, ':');
                let (Some(id), Some(tip_amount), Some(message)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(Error::Corrupt(format!("tip row {b:?}")));
                };
                let id: U256 = id.parse().map_err(|_| Error::Corrupt(format!("tip id {id:?}")))?;
                let message = alloy::hex::decode(message)
                    .map_err(|_| Error::Corrupt(format!("tip message {message:?}")))?;
                let stored = StoredTip {
                    payee: Address::from_slice(&payee),
                    amount: parse_amount(tip_amount)?,
                    message: alloy::primitives::keccak256(message),
                };
                state.tips.insert((B256::from_slice(&key), id), stored);
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

/// A guard epoch as read.
fn epoch(text: Option<&str>) -> Result<i64> {
    text.and_then(|e| e.parse().ok())
        .ok_or_else(|| Error::Corrupt(format!("guard epoch {text:?} is not a bigint")))
}

/// One row of the combined read: `p` (grant, payee, voucher, settled), `l` (listener, available, owed), `g` (grant,
/// total, other relays' leases), `r` (grant revoked by id), `f` (grant below its listener's nonce floor, the floor),
/// `y` (app session, version, status), `e` (listener, guard epoch, other relays' leases; `NULL` leases for a
/// listener whose epoch alone was asked) or `t` (a stored tip: grant, payee, `id:amount:hex(message)`).
type StateRow = (String, Vec<u8>, Option<Vec<u8>>, Option<String>, Option<String>);

/// Everything the guard needs in one statement ($1 chain id; pairs $2/$3; listeners $4; grants $5 with their
/// listeners $7 and nonces $8; app sessions $6; the reading relay $9; listeners whose epoch alone is read $10; tips
/// $11/$12 by grant and id). Settled amounts are looked up per pair, never hashed over the whole table. A revocation
/// counts only when it is the grant's own listener's. A listener owes its unsettled tips (no `vault_tips` row yet)
/// besides its vouchers; a grant's total counts every tip of it, settled or not, as the vault's `grantSpent` does.
const READ_STATE: &str = concat!("
    SELECT 'p', t.g, t.p,
           coalesce((SELECT v.cumulative::text FROM vouchers v WHERE v.grant_id = t.g AND v.payee = t.p),
                    (SELECT y.paid::text FROM yellow_app_sessions y WHERE y.app_session_id = t.g AND y.payee = t.p)),
           (SELECT s.cumulative::text FROM settled_pairs s
            WHERE s.chain_id = $1 AND s.grant_id = t.g AND s.payee = t.p)
    FROM unnest($2::bytea[], $3::bytea[]) AS t(g, p)
    UNION ALL
    SELECT 'l', t.l, NULL,
           (SELECT a.available::text FROM listener_accounts a WHERE a.chain_id = $1 AND a.listener = t.l),
           ((SELECT coalesce(sum(greatest(v.cumulative - coalesce(
                       (SELECT s.cumulative FROM settled_pairs s
                        WHERE s.chain_id = $1 AND s.grant_id = v.grant_id AND s.payee = v.payee), 0), 0)), 0)
            FROM vouchers v WHERE v.listener = t.l)
           + (SELECT coalesce(sum(tp.amount), 0) FROM tips tp
              WHERE tp.listener = t.l AND NOT EXISTS (
                  SELECT 1 FROM vault_tips vt
                  WHERE vt.chain_id = $1 AND vt.grant_id = tp.grant_id AND vt.tip_id = tp.tip_id)))::text
    FROM unnest($4::bytea[]) AS t(l)
    UNION ALL
    SELECT 'g', t.g, NULL,
           ((SELECT coalesce(sum(gp.cumulative), 0) FROM (", grant_pairs!("t.g"), ") gp)
            + (SELECT coalesce(sum(tp.amount), 0) FROM tips tp WHERE tp.grant_id = t.g))::text,
           (SELECT coalesce(sum(r.amount), 0)::text FROM relay_leases r
            WHERE r.chain_id = $1 AND r.grant_id = t.g AND r.relay_id <> $9)
    FROM unnest($5::bytea[]) AS t(g)
    UNION ALL
    SELECT 'e', t.l, NULL,
           coalesce((SELECT e.epoch FROM guard_epochs e WHERE e.chain_id = $1 AND e.listener = t.l), 0)::text,
           (SELECT coalesce(sum(r.amount), 0)::text FROM relay_leases r
            WHERE r.chain_id = $1 AND r.listener = t.l AND r.relay_id <> $9)
    FROM unnest($4::bytea[]) AS t(l)
    UNION ALL
    SELECT 'e', t.l, NULL,
           coalesce((SELECT e.epoch FROM guard_epochs e WHERE e.chain_id = $1 AND e.listener = t.l), 0)::text,
           NULL
    FROM unnest($10::bytea[]) AS t(l)
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
    FROM yellow_app_sessions y WHERE y.app_session_id = ANY($6::bytea[])
    UNION ALL
    SELECT 't', tp.grant_id, tp.payee, NULL,
           tp.tip_id::text || ':' || tp.amount::text || ':' || encode(tp.message, 'hex')
    FROM unnest($11::bytea[], $12::text[]) AS k(g, i)
    JOIN tips tp ON tp.grant_id = k.g AND tp.tip_id = k.i::numeric");
