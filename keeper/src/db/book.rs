//! The settleable part of the relay's voucher book and its tips, and the keeper's holds on vouchers and tips the
//! vault would skip.

use alloy::primitives::{Address, B256, U256};
use beatstream_primitives::contracts::BeatStreamVault::SessionGrant;

use super::{pool::Db, types::SkipReason};
use crate::{
    Result,
    book::{Candidate, Tip},
    config::Target,
};

/// Vouchers above what is settled, not in an open transaction and not held. "Settled" is the indexer's
/// `settled_pairs`, or a confirmed transaction of ours the indexer has not reached yet.
const CANDIDATES: &str = "
WITH idx AS (SELECT coalesce((SELECT block_number FROM chain_cursor WHERE chain_id = $1), -1) AS indexed)
SELECT v.grant_id, v.payee, v.cumulative::text, v.signature, extract(epoch FROM v.updated_at)::float8,
       g.listener, g.session_key, g.cap::text, extract(epoch FROM g.expires_at)::int8, g.nonce::text, g.signature,
       greatest(coalesce(sp.cumulative, 0), coalesce(c.cumulative, 0))::text,
       gs.grant_id IS NOT NULL,
       coalesce(la.thawing, 0) > 0,
       coalesce(cardinality(s.recipients), 0)
FROM vouchers v
JOIN grants g ON g.grant_id = v.grant_id
LEFT JOIN splits s ON s.chain_id = $1 AND s.split = v.payee
LEFT JOIN settled_pairs sp ON sp.chain_id = $1 AND sp.grant_id = v.grant_id AND sp.payee = v.payee
LEFT JOIN grant_spend gs ON gs.chain_id = $1 AND gs.grant_id = v.grant_id
LEFT JOIN listener_accounts la ON la.chain_id = $1 AND la.listener = v.listener
LEFT JOIN LATERAL (
    SELECT max(i.cumulative) AS cumulative
    FROM keeper_batch_items i JOIN keeper_batches b ON b.id = i.batch_id
    WHERE i.grant_id = v.grant_id AND i.payee = v.payee AND b.status = 'confirmed' AND i.outcome = 'settled'
      AND b.confirmed_block > (SELECT indexed FROM idx)
) c ON true
WHERE g.chain_id = $1 AND g.vault = $2
  AND g.expires_at + make_interval(secs => $3) > now()
  AND v.cumulative > greatest(coalesce(sp.cumulative, 0), coalesce(c.cumulative, 0))
  AND NOT EXISTS (
      SELECT 1 FROM keeper_batch_items i JOIN keeper_batches b ON b.id = i.batch_id
      WHERE i.grant_id = v.grant_id AND i.payee = v.payee AND b.status IN ('pending', 'broadcast', 'mined'))
  AND NOT EXISTS (
      SELECT 1 FROM keeper_holds h
      WHERE h.grant_id = v.grant_id AND h.retry_at > now()
        AND ((h.payee = v.payee AND h.cumulative = v.cumulative) OR h.reason = $4))";

type Row = (
    Vec<u8>,
    Vec<u8>,
    String,
    Vec<u8>,
    f64,
    Vec<u8>,
    Vec<u8>,
    String,
    i64,
    String,
    Vec<u8>,
    String,
    bool,
    bool,
    i32,
);

/// Tips the relay acked that are not settled (no `vault_tips` row, no confirmed settlement of ours), not in an open
/// transaction and not held, oldest first. A revoked grant's hold stops its tips too.
const TIPS: &str = "
SELECT t.grant_id, t.payee, t.tip_id::text, t.amount::text, t.message, t.signature,
       extract(epoch FROM t.created_at)::float8,
       g.listener, g.session_key, g.cap::text, extract(epoch FROM g.expires_at)::int8, g.nonce::text, g.signature,
       gs.grant_id IS NOT NULL,
       coalesce(la.thawing, 0) > 0,
       coalesce(cardinality(s.recipients), 0)
FROM tips t
JOIN grants g ON g.grant_id = t.grant_id
LEFT JOIN grant_spend gs ON gs.chain_id = $1 AND gs.grant_id = t.grant_id
LEFT JOIN listener_accounts la ON la.chain_id = $1 AND la.listener = t.listener
LEFT JOIN splits s ON s.chain_id = $1 AND s.split = t.payee
WHERE g.chain_id = $1 AND g.vault = $2
  AND g.expires_at + make_interval(secs => $3) > now()
  AND NOT EXISTS (
      SELECT 1 FROM vault_tips vt WHERE vt.chain_id = $1 AND vt.grant_id = t.grant_id AND vt.tip_id = t.tip_id)
  AND NOT EXISTS (
      SELECT 1 FROM keeper_batch_tips i JOIN keeper_batches b ON b.id = i.batch_id
      WHERE i.grant_id = t.grant_id AND i.tip_id = t.tip_id
        AND (b.status IN ('pending', 'broadcast', 'mined') OR (b.status = 'confirmed' AND i.outcome = 'settled')))
  AND NOT EXISTS (
      SELECT 1 FROM keeper_tip_holds h WHERE h.grant_id = t.grant_id AND h.tip_id = t.tip_id AND h.retry_at > now())
  AND NOT EXISTS (
      SELECT 1 FROM keeper_holds h WHERE h.grant_id = t.grant_id AND h.reason = $4 AND h.retry_at > now())
ORDER BY t.created_at, t.grant_id, t.tip_id";

type TipRow = (
    Vec<u8>,
    Vec<u8>,
    String,
    String,
    Vec<u8>,
    Vec<u8>,
    f64,
    Vec<u8>,
    Vec<u8>,
    String,
    i64,
    String,
    Vec<u8>,
    bool,
    bool,
    i32,
);

impl Db {
    /// Every settleable voucher of `target`; urgent when the listener is withdrawing or the grant's settlement
    /// window ends within `urgent_window_secs`.
    pub(crate) async fn candidates(
        &self,
        target: Target,
        urgent_window_secs: u64,
    ) -> Result<Vec<Candidate>> {
        let rows: Vec<Row> = sqlx::query_as(CANDIDATES)
            .bind(target.chain_id as i64)
            .bind(target.vault.as_slice())
            .bind(target.settlement_window as f64)
            // A revoked grant's hold stops every voucher of the grant, newer ones included: none can settle again.
            .bind(SkipReason::GrantRevoked)
            .fetch_all(&self.pool)
            .await?;
        let now = beatstream_primitives::unix_now();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (grant_id, payee, cumulative, signature, voucher_at) =
                (row.0, row.1, row.2, row.3, row.4);
            let (listener, session_key, cap, expires_at, nonce, grant_sig) =
                (row.5, row.6, row.7, row.8, row.9, row.10);
            let (settled, registered, withdrawing, split_size) = (row.11, row.12, row.13, row.14);
            let (Ok(cumulative), Ok(cap), Ok(nonce), Ok(settled)) = (
                cumulative.parse::<U256>(),
                cap.parse::<U256>(),
                nonce.parse::<u64>(),
                settled.parse::<U256>(),
            ) else {
                continue;
            };
            let expires_at = expires_at.max(0) as u64;
            let window_end = expires_at.saturating_add(target.settlement_window);
            out.push(Candidate {
                grant_id: B256::from_slice(&grant_id),
                grant: SessionGrant {
                    listener: Address::from_slice(&listener),
                    sessionKey: Address::from_slice(&session_key),
                    cap,
                    expiresAt: expires_at,
                    nonce,
                },
                grant_signature: grant_sig.into(),
                registered,
                payee: Address::from_slice(&payee),
                cumulative,
                signature: signature.into(),
                value: cumulative.saturating_sub(settled),
                voucher_at,
                urgent: withdrawing || window_end.saturating_sub(now) <= urgent_window_secs,
                wallet: false,
                split_size: split_size.max(0) as u32,
            });
        }
        Ok(out)
    }

    /// Every unsettled tip of `target`, oldest first; urgent as a voucher is.
    pub(crate) async fn tips(&self, target: Target, urgent_window_secs: u64) -> Result<Vec<Tip>> {
        let rows: Vec<TipRow> = sqlx::query_as(TIPS)
            .bind(target.chain_id as i64)
            .bind(target.vault.as_slice())
            .bind(target.settlement_window as f64)
            .bind(SkipReason::GrantRevoked)
            .fetch_all(&self.pool)
            .await?;
        let now = beatstream_primitives::unix_now();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (grant_id, payee, tip_id, amount, message, signature, tipped_at) =
                (row.0, row.1, row.2, row.3, row.4, row.5, row.6);
            let (listener, session_key, cap, expires_at, nonce, grant_sig) =
                (row.7, row.8, row.9, row.10, row.11, row.12);
            let (registered, withdrawing, split_size) = (row.13, row.14, row.15);
            let (Ok(tip_id), Ok(amount), Ok(cap), Ok(nonce)) = (
                tip_id.parse::<U256>(),
                amount.parse::<U256>(),
                cap.parse::<U256>(),
                nonce.parse::<u64>(),
            ) else {
                continue;
            };
            // The relay stores UTF-8 only; anything else could not be sent as the ABI's string unchanged, and a
            // changed message would not match its signature.
            let Ok(message) = String::from_utf8(message) else {
                continue;
            };
            let expires_at = expires_at.max(0) as u64;
            let window_end = expires_at.saturating_add(target.settlement_window);
            out.push(Tip {
                grant_id: B256::from_slice(&grant_id),
                grant: SessionGrant {
                    listener: Address::from_slice(&listener),
                    sessionKey: Address::from_slice(&session_key),
                    cap,
                    expiresAt: expires_at,
                    nonce,
                },
                grant_signature: grant_sig.into(),
                registered,
                payee: Address::from_slice(&payee),
                tip_id,
                amount,
                message,
                signature: signature.into(),
                tipped_at,
                urgent: withdrawing || window_end.saturating_sub(now) <= urgent_window_secs,
                wallet: false,
                split_size: split_size.max(0) as u32,
            });
        }
        Ok(out)
    }

    /// Holds a tip the vault would skip for `reason` until `retry_secs` from now.
    pub(crate) async fn hold_tip(
        &self,
        tip: &Tip,
        reason: SkipReason,
        retry_secs: f64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO keeper_tip_holds (grant_id, tip_id, reason, retry_at)
             VALUES ($1, $2::numeric, $3, now() + make_interval(secs => $4))
             ON CONFLICT (grant_id, tip_id) DO UPDATE
                SET reason = EXCLUDED.reason, retry_at = EXCLUDED.retry_at, created_at = now()",
        )
        .bind(tip.grant_id.as_slice())
        .bind(tip.tip_id.to_string())
        .bind(reason)
        .bind(retry_secs)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Holds a voucher the vault would skip for `reason` until `retry_secs` from now, or until a newer voucher of
    /// the pair (except for a revoked grant, whose hold covers the whole grant).
    pub(crate) async fn hold(
        &self,
        voucher: &Candidate,
        reason: SkipReason,
        retry_secs: f64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO keeper_holds (grant_id, payee, cumulative, reason, retry_at)
             VALUES ($1, $2, $3::numeric, $4, now() + make_interval(secs => $5))
             ON CONFLICT (grant_id, payee) DO UPDATE
                SET cumulative = EXCLUDED.cumulative, reason = EXCLUDED.reason, retry_at = EXCLUDED.retry_at,
                    created_at = now()",
        )
        .bind(voucher.grant_id.as_slice())
        .bind(voucher.payee.as_slice())
        .bind(voucher.cumulative.to_string())
        .bind(reason)
        .bind(retry_secs)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
