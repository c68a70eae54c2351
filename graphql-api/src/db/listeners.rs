//! A listener's account: balance, grants and their revocation, nonce floor, spending, deposits and withdrawals.

use sqlx::postgres::PgRow;

use super::{
    list::{Bind, Filter, List, ListQuery},
    pool::{Db, b, i, s},
};
use crate::Result;

/// A `listener_accounts` row.
#[derive(Clone, Debug)]
pub(crate) struct BalanceRow {
    pub(crate) available: String,
    pub(crate) thawing: String,
    pub(crate) thaw_end: Option<i64>,
    pub(crate) deposited: String,
    pub(crate) spent: String,
    pub(crate) withdrawn: String,
}

/// The listener's vault account, if it ever used the vault.
pub(crate) async fn balance(db: &Db, listener: &[u8]) -> Result<Option<BalanceRow>> {
    let row: Option<(String, String, Option<i64>, String, String, String)> = sqlx::query_as(
        "SELECT available::text, thawing::text, extract(epoch FROM thaw_end)::int8, deposited_total::text,
                spent_total::text, withdrawn_total::text
         FROM listener_accounts WHERE chain_id = $1 AND listener = $2",
    )
    .bind(db.chain_id)
    .bind(listener)
    .fetch_optional(&mut *db.reader().await?)
    .await?;
    Ok(row.map(|(available, thawing, thaw_end, deposited, spent, withdrawn)| BalanceRow {
        available,
        thawing,
        thaw_end,
        deposited,
        spent,
        withdrawn,
    }))
}

/// A grant with what was paid and promised under it and its revocation.
#[derive(Clone, Debug)]
pub(crate) struct GrantRow {
    pub(crate) id: Vec<u8>,
    pub(crate) session_key: Vec<u8>,
    pub(crate) cap: String,
    pub(crate) expires_at: i64,
    pub(crate) nonce: String,
    pub(crate) spent: String,
    pub(crate) vouched: String,
    /// The earlier of the revocation by id and by nonce floor.
    pub(crate) revoked_at: Option<i64>,
    pub(crate) effective_at: Option<i64>,
}

/// The listener's grants, newest expiry first (at most 100).
pub(crate) async fn grants(db: &Db, listener: &[u8]) -> Result<Vec<GrantRow>> {
    type Row = (Vec<u8>, Vec<u8>, String, i64, String, String, String, Option<i64>, Option<i64>);
    // A floor revokes the grant when it is raised above its nonce; the vault applies it from the first raise
    // above the nonce that took effect (a raise replaced while pending never did, the newest always will).
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT g.grant_id, g.session_key, g.cap::text, extract(epoch FROM g.expires_at)::int8, g.nonce::text,
                coalesce(gs.spent, 0)::text,
                coalesce((SELECT sum(v.cumulative) FROM vouchers v WHERE v.grant_id = g.grant_id), 0)::text,
                extract(epoch FROM least(r.revoked_at, f.revoked_at))::int8,
                extract(epoch FROM least(r.effective_at, f.effective_at))::int8
         FROM grants g
         LEFT JOIN grant_spend gs ON gs.chain_id = g.chain_id AND gs.grant_id = g.grant_id
         LEFT JOIN grant_revocations r
                ON r.chain_id = g.chain_id AND r.grant_id = g.grant_id AND r.listener = g.listener
         LEFT JOIN LATERAL (
             SELECT min(x.block_time) AS revoked_at,
                    min(x.effective_at) FILTER (WHERE x.next_at IS NULL OR x.next_at >= x.effective_at)
                        AS effective_at
             FROM (SELECT block_time, nonce_floor, effective_at,
                          lead(block_time) OVER (ORDER BY block_number, log_index) AS next_at
                   FROM vault_nonce_floor_raises
                   WHERE chain_id = g.chain_id AND listener = g.listener) x
             WHERE x.nonce_floor > g.nonce
         ) f ON true
         WHERE g.chain_id = $1 AND g.listener = $2
         ORDER BY g.expires_at DESC, g.grant_id LIMIT 100",
    )
    .bind(db.chain_id)
    .bind(listener)
    .fetch_all(&mut *db.reader().await?)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                session_key,
                cap,
                expires_at,
                nonce,
                spent,
                vouched,
                revoked_at,
                effective_at,
            )| {
                GrantRow {
                    id,
                    session_key,
                    cap,
                    expires_at,
                    nonce,
                    spent,
                    vouched,
                    revoked_at,
                    effective_at,
                }
            },
        )
        .collect())
}

/// A `listener_nonce_floors` row.
#[derive(Clone, Debug)]
pub(crate) struct NonceFloorRow {
    pub(crate) floor: String,
    pub(crate) previous: String,
    pub(crate) floor_from: i64,
}

/// The listener's nonce floor, if it ever raised one.
pub(crate) async fn nonce_floor(db: &Db, listener: &[u8]) -> Result<Option<NonceFloorRow>> {
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT floor::text, previous::text, extract(epoch FROM floor_from)::int8
         FROM listener_nonce_floors WHERE chain_id = $1 AND listener = $2",
    )
    .bind(db.chain_id)
    .bind(listener)
    .fetch_optional(&mut *db.reader().await?)
    .await?;
    Ok(row.map(|(floor, previous, floor_from)| NonceFloorRow { floor, previous, floor_from }))
}

/// What a listener paid one payee.
#[derive(Clone, Debug)]
pub(crate) struct SpendRow {
    pub(crate) payee: Vec<u8>,
    pub(crate) settled: String,
    pub(crate) vouched: String,
}

/// What the listener paid each payee, settled and vouched, most first (at most 100).
pub(crate) async fn spend_per_payee(db: &Db, listener: &[u8]) -> Result<Vec<SpendRow>> {
    let rows: Vec<(Vec<u8>, String, String)> = sqlx::query_as(
        "SELECT payee, sum(settled)::text, sum(vouched)::text FROM (
             SELECT payee, cumulative AS settled, 0 AS vouched FROM settled_pairs
             WHERE chain_id = $1 AND listener = $2
             UNION ALL
             SELECT payee, 0, cumulative FROM vouchers WHERE listener = $2
         ) x GROUP BY payee ORDER BY sum(vouched) DESC, sum(settled) DESC, payee LIMIT 100",
    )
    .bind(db.chain_id)
    .bind(listener)
    .fetch_all(&mut *db.reader().await?)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(payee, settled, vouched)| SpendRow { payee, settled, vouched })
        .collect())
}

/// A `vault_deposits` row.
#[derive(Clone, Debug)]
pub(crate) struct DepositRow {
    pub(crate) block_number: i64,
    pub(crate) block_time: i64,
    pub(crate) tx_hash: Vec<u8>,
    pub(crate) listener: Vec<u8>,
    pub(crate) sender: Vec<u8>,
    pub(crate) amount: String,
}

/// Deposits, newest first, of one listener when given.
pub(crate) fn deposits(db: &Db, listener: Option<Vec<u8>>) -> List<DepositRow> {
    let filters =
        listener.map(|l| Filter::new("d.listener =", Bind::Bytes(l))).into_iter().collect();
    let query = ListQuery {
        select: "d.block_number, d.log_index::int8 AS log_index, extract(epoch FROM d.block_time)::int8 AS block_time,
                 d.tx_hash, d.listener, d.sender, d.amount::text AS amount",
        from: "vault_deposits d",
        base: "d.chain_id = $1",
        chain_id: db.chain_id,
        filters,
        keys: &[("d.block_number", "int8"), ("d.log_index", "int4")],
        descending: true,
    };
    List::new(query, deposit_node)
}

fn deposit_node(row: &PgRow) -> sqlx::Result<(DepositRow, Vec<String>)> {
    let (block, log) = (i(row, "block_number")?, i(row, "log_index")?);
    let node = DepositRow {
        block_number: block,
        block_time: i(row, "block_time")?,
        tx_hash: b(row, "tx_hash")?,
        listener: b(row, "listener")?,
        sender: b(row, "sender")?,
        amount: s(row, "amount")?,
    };
    Ok((node, vec![block.to_string(), log.to_string()]))
}

/// A `vault_withdrawals` row.
#[derive(Clone, Debug)]
pub(crate) struct WithdrawalRow {
    pub(crate) block_number: i64,
    pub(crate) block_time: i64,
    pub(crate) tx_hash: Vec<u8>,
    pub(crate) listener: Vec<u8>,
    pub(crate) recipient: Vec<u8>,
    pub(crate) amount: String,
}

/// Completed withdrawals, newest first, of one listener when given.
pub(crate) fn withdrawals(db: &Db, listener: Option<Vec<u8>>) -> List<WithdrawalRow> {
    let filters =
        listener.map(|l| Filter::new("w.listener =", Bind::Bytes(l))).into_iter().collect();
    let query = ListQuery {
        select: "w.block_number, w.log_index::int8 AS log_index, extract(epoch FROM w.block_time)::int8 AS block_time,
                 w.tx_hash, w.listener, w.recipient, w.amount::text AS amount",
        from: "vault_withdrawals w",
        base: "w.chain_id = $1",
        chain_id: db.chain_id,
        filters,
        keys: &[("w.block_number", "int8"), ("w.log_index", "int4")],
        descending: true,
    };
    List::new(query, withdrawal_node)
}

fn withdrawal_node(row: &PgRow) -> sqlx::Result<(WithdrawalRow, Vec<String>)> {
    let (block, log) = (i(row, "block_number")?, i(row, "log_index")?);
    let node = WithdrawalRow {
        block_number: block,
        block_time: i(row, "block_time")?,
        tx_hash: b(row, "tx_hash")?,
        listener: b(row, "listener")?,
        recipient: b(row, "recipient")?,
        amount: s(row, "amount")?,
    };
    Ok((node, vec![block.to_string(), log.to_string()]))
}
