//! The keeper's journal of settlement transactions.

use sqlx::{Row, postgres::PgRow};

use super::{
    list::{Bind, Filter, List, ListQuery},
    pool::{Db, i, s},
};

/// A `keeper_batches` row with its counts.
#[derive(Clone, Debug)]
pub(crate) struct KeeperBatchRow {
    pub(crate) id: i64,
    pub(crate) nonce: i64,
    pub(crate) kind: String,
    pub(crate) status: String,
    pub(crate) confirmed_hash: Option<Vec<u8>>,
    pub(crate) confirmed_block: Option<i64>,
    pub(crate) gas_used: Option<i64>,
    pub(crate) vouchers: i64,
    pub(crate) settled: Option<i64>,
    pub(crate) attempts: i64,
    pub(crate) created_at: i64,
    pub(crate) confirmed_at: Option<i64>,
}

/// The keeper's transactions, newest first, only those in `status` when given.
pub(crate) fn list(db: &Db, status: Option<String>) -> List<KeeperBatchRow> {
    let mut filters = Vec::new();
    if let Some(status) = status {
        filters.push(Filter::new("k.status =", Bind::Text(status)));
    }
    let query = ListQuery {
        select: "k.id, k.nonce, k.kind, k.status, k.confirmed_hash, k.confirmed_block, k.gas_used,
                 k.settled_count::int8 AS settled_count,
                 (SELECT count(*) FROM keeper_batch_items i WHERE i.batch_id = k.id) AS vouchers,
                 (SELECT count(*) FROM keeper_attempts a WHERE a.batch_id = k.id) AS attempts,
                 extract(epoch FROM k.created_at)::int8 AS created_at,
                 extract(epoch FROM k.confirmed_at)::int8 AS confirmed_at",
        from: "keeper_batches k",
        base: "k.chain_id = $1",
        chain_id: db.chain_id,
        filters,
        keys: &[("k.id", "int8")],
        descending: true,
    };
    List::new(query, node)
}

fn node(row: &PgRow) -> sqlx::Result<(KeeperBatchRow, Vec<String>)> {
    let id = i(row, "id")?;
    let node = KeeperBatchRow {
        id,
        nonce: i(row, "nonce")?,
        kind: s(row, "kind")?,
        status: s(row, "status")?,
        confirmed_hash: row.try_get("confirmed_hash")?,
        confirmed_block: row.try_get("confirmed_block")?,
        gas_used: row.try_get("gas_used")?,
        vouchers: i(row, "vouchers")?,
        settled: row.try_get("settled_count")?,
        attempts: i(row, "attempts")?,
        created_at: i(row, "created_at")?,
        confirmed_at: row.try_get("confirmed_at")?,
    };
    Ok((node, vec![id.to_string()]))
}
