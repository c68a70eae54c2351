//! Global totals.

use super::pool::{Db, i, s};
use crate::Result;

/// Counts and sums over the whole mirror.
#[derive(Clone, Debug)]
pub(crate) struct StatsRow {
    pub(crate) artists: i64,
    pub(crate) tracks: i64,
    pub(crate) listeners: i64,
    pub(crate) deposited: String,
    pub(crate) settled: String,
    pub(crate) fees: String,
    pub(crate) settlements: i64,
    pub(crate) live_sessions: i64,
    pub(crate) indexed_block: Option<i64>,
}

/// The totals now.
pub(crate) async fn totals(db: &Db) -> Result<StatsRow> {
    use sqlx::Row;
    let row = sqlx::query(
        "SELECT
            (SELECT count(*) FROM artists WHERE chain_id = $1) AS artists,
            (SELECT count(*) FROM tracks WHERE chain_id = $1 AND published) AS tracks,
            (SELECT count(*) FROM listener_accounts WHERE chain_id = $1) AS listeners,
            (SELECT coalesce(sum(deposited_total), 0)::text FROM listener_accounts WHERE chain_id = $1) AS deposited,
            (SELECT coalesce(sum(earned_total), 0)::text FROM payee_earnings WHERE chain_id = $1) AS settled,
            (SELECT coalesce(sum(fees_total), 0)::text FROM payee_earnings WHERE chain_id = $1) AS fees,
            (SELECT coalesce(sum(settlements), 0)::int8 FROM payee_earnings WHERE chain_id = $1) AS settlements,
            (SELECT count(*) FROM sessions WHERE ended_at IS NULL) AS live,
            (SELECT block_number FROM chain_cursor WHERE chain_id = $1) AS indexed",
    )
    .bind(db.chain_id)
    .fetch_one(&mut *db.reader().await?)
    .await?;
    Ok(StatsRow {
        artists: i(&row, "artists")?,
        tracks: i(&row, "tracks")?,
        listeners: i(&row, "listeners")?,
        deposited: s(&row, "deposited")?,
        settled: s(&row, "settled")?,
        fees: s(&row, "fees")?,
        settlements: i(&row, "settlements")?,
        live_sessions: i(&row, "live")?,
        indexed_block: row.try_get("indexed")?,
    })
}
