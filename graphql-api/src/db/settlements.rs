//! On-chain settlements: the list, the hourly series and the artist ranking.

use sqlx::postgres::PgRow;

use super::{
    list::{Bind, Filter, List, ListQuery},
    pool::{Db, b, i, s},
};
use crate::Result;

/// A `vault_settlements` row.
#[derive(Clone, Debug)]
pub(crate) struct SettlementRow {
    pub(crate) block_number: i64,
    pub(crate) block_time: i64,
    pub(crate) tx_hash: Vec<u8>,
    pub(crate) log_index: i64,
    pub(crate) grant_id: Vec<u8>,
    pub(crate) listener: Vec<u8>,
    pub(crate) payee: Vec<u8>,
    pub(crate) amount: String,
    pub(crate) fee: String,
    pub(crate) net: String,
    pub(crate) cumulative: String,
}

/// Which settlements a list holds.
#[derive(Clone, Debug, Default)]
pub(crate) struct SettlementFilter {
    pub(crate) listener: Option<Vec<u8>>,
    pub(crate) payee: Option<Vec<u8>>,
    pub(crate) grant_id: Option<Vec<u8>>,
}

/// Settlements matching `filter` in chain order, newest first when `newest`.
pub(crate) fn list(db: &Db, filter: SettlementFilter, newest: bool) -> List<SettlementRow> {
    let mut filters = Vec::new();
    if let Some(l) = filter.listener {
        filters.push(Filter::new("s.listener =", Bind::Bytes(l)));
    }
    if let Some(p) = filter.payee {
        filters.push(Filter::new("s.payee =", Bind::Bytes(p)));
    }
    if let Some(g) = filter.grant_id {
        filters.push(Filter::new("s.grant_id =", Bind::Bytes(g)));
    }
    let query = ListQuery {
        select: "s.block_number, extract(epoch FROM s.block_time)::int8 AS block_time, s.tx_hash,
                 s.log_index::int8 AS log_index, s.grant_id, s.listener, s.payee, s.amount::text AS amount,
                 s.fee::text AS fee, (s.amount - s.fee)::text AS net, s.cumulative::text AS cumulative",
        from: "vault_settlements s",
        base: "s.chain_id = $1",
        chain_id: db.chain_id,
        filters,
        keys: &[("s.block_number", "int8"), ("s.log_index", "int4")],
        descending: newest,
    };
    List::new(query, node)
}

fn node(row: &PgRow) -> sqlx::Result<(SettlementRow, Vec<String>)> {
    let (block, log) = (i(row, "block_number")?, i(row, "log_index")?);
    let node = SettlementRow {
        block_number: block,
        block_time: i(row, "block_time")?,
        tx_hash: b(row, "tx_hash")?,
        log_index: log,
        grant_id: b(row, "grant_id")?,
        listener: b(row, "listener")?,
        payee: b(row, "payee")?,
        amount: s(row, "amount")?,
        fee: s(row, "fee")?,
        net: s(row, "net")?,
        cumulative: s(row, "cumulative")?,
    };
    Ok((node, vec![block.to_string(), log.to_string()]))
}

/// Width of a series bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interval {
    Hour,
    Day,
}

/// Settled volume in one bucket.
#[derive(Clone, Debug)]
pub(crate) struct BucketRow {
    pub(crate) start: i64,
    pub(crate) amount: String,
    pub(crate) fees: String,
    pub(crate) settlements: i64,
}

/// Settled volume per `interval` in `[from, to)` (unix times), of one payee or of everyone.
pub(crate) async fn series(
    db: &Db,
    payee: Option<Vec<u8>>,
    interval: Interval,
    from: i64,
    to: i64,
) -> Result<Vec<BucketRow>> {
    let unit = match interval {
        Interval::Hour => "hour",
        Interval::Day => "day",
    };
    let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT extract(epoch FROM date_trunc($2, hour))::int8 AS bucket, sum(amount)::text, sum(fees)::text,
                sum(settlements)::int8
         FROM settlement_hourly
         WHERE chain_id = $1 AND ($3::bytea IS NULL OR payee = $3)
           AND hour >= to_timestamp($4) AND hour < to_timestamp($5)
         GROUP BY bucket ORDER BY bucket",
    )
    .bind(db.chain_id)
    .bind(unit)
    .bind(payee)
    .bind(from as f64)
    .bind(to as f64)
    .fetch_all(&mut *db.reader().await?)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(start, amount, fees, settlements)| BucketRow { start, amount, fees, settlements })
        .collect())
}

/// A payee in the earnings ranking.
#[derive(Clone, Debug)]
pub(crate) struct ArtistRankingRow {
    pub(crate) payee: Vec<u8>,
    pub(crate) earned: String,
    pub(crate) settlements: i64,
}

/// The `limit` payees who earned most in the last `hours`.
pub(crate) async fn top_payees(db: &Db, hours: i32, limit: i32) -> Result<Vec<ArtistRankingRow>> {
    let rows: Vec<(Vec<u8>, String, i64)> = sqlx::query_as(
        "SELECT payee, sum(amount)::text, sum(settlements)::int8 FROM settlement_hourly
         WHERE chain_id = $1 AND hour >= date_trunc('hour', now() - make_interval(hours => $2))
         GROUP BY payee ORDER BY sum(amount) DESC, payee LIMIT $3",
    )
    .bind(db.chain_id)
    .bind(hours)
    .bind(i64::from(limit))
    .fetch_all(&mut *db.reader().await?)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(payee, earned, settlements)| ArtistRankingRow { payee, earned, settlements })
        .collect())
}
