//! The batch's bookkeeping statements (headers, cursor, pruning, notifications) and the loop's reads (cursor,
//! stored hashes).

use alloy::primitives::B256;
use sqlx::{PgPool, Postgres, Transaction};

use crate::{
    Error,
    chain::{BlockRef, Cursor},
};

/// Which kinds of rows a batch changed, to `NOTIFY` their channels after it commits.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Changed {
    pub(crate) accounts: bool,
    pub(crate) settlements: bool,
    pub(crate) earnings: bool,
    pub(crate) grants: bool,
    pub(crate) artists: bool,
    pub(crate) tracks: bool,
    /// Grant revocations and nonce floors.
    pub(crate) revocations: bool,
    /// Splits set or cleared, and split payments.
    pub(crate) splits: bool,
    /// Tips settled.
    pub(crate) tips: bool,
}

/// Reads the cursor of `chain_id`, if the chain was indexed before.
pub(crate) async fn cursor(pool: &PgPool, chain_id: i64) -> sqlx::Result<Option<Cursor>> {
    let row: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT block_number, block_hash FROM chain_cursor WHERE chain_id = $1")
            .bind(chain_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(n, h)| Cursor { number: n as u64, hash: B256::from_slice(&h) }))
}

/// The stored hash of block `number`, if it is inside the kept window.
pub(crate) async fn block_hash(
    pool: &PgPool,
    chain_id: i64,
    number: u64,
) -> sqlx::Result<Option<B256>> {
    let hash: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT hash FROM blocks WHERE chain_id = $1 AND number = $2")
            .bind(chain_id)
            .bind(number as i64)
            .fetch_optional(pool)
            .await?;
    Ok(hash.map(|h| B256::from_slice(&h)))
}

/// The lowest block still kept for reorg detection.
pub(crate) async fn lowest_kept_block(pool: &PgPool, chain_id: i64) -> sqlx::Result<Option<u64>> {
    let n: Option<i64> = sqlx::query_scalar("SELECT min(number) FROM blocks WHERE chain_id = $1")
        .bind(chain_id)
        .fetch_one(pool)
        .await?;
    Ok(n.map(|n| n as u64))
}

pub(super) async fn insert_headers(
    tx: &mut Transaction<'_, Postgres>,
    chain_id: i64,
    headers: &[BlockRef],
) -> sqlx::Result<()> {
    if headers.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO blocks (chain_id, number, hash, parent_hash, timestamp) \
         SELECT $1, n, h, p, to_timestamp(t) FROM UNNEST($2::int8[], $3::bytea[], $4::bytea[], $5::int8[]) AS u(n, h, p, t) \
         ON CONFLICT (chain_id, number) DO UPDATE SET hash = EXCLUDED.hash, parent_hash = EXCLUDED.parent_hash, \
         timestamp = EXCLUDED.timestamp",
    )
    .bind(chain_id)
    .bind(headers.iter().map(|h| h.number as i64).collect::<Vec<_>>())
    .bind(headers.iter().map(|h| h.hash.to_vec()).collect::<Vec<_>>())
    .bind(headers.iter().map(|h| h.parent_hash.to_vec()).collect::<Vec<_>>())
    .bind(headers.iter().map(|h| super::sql::clamp_time(h.timestamp)).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves the cursor from `from` (where a batch starts, or where a rollback starts) to `to`, and fails with
/// [`Error::CursorMoved`] if it is not at `from`: batches commit strictly in block order even when two are written at
/// once, and a second indexer on the same database cannot interleave its batches or rollbacks with this one's.
pub(super) async fn move_cursor(
    tx: &mut Transaction<'_, Postgres>,
    chain_id: i64,
    from: Option<Cursor>,
    to: Cursor,
) -> crate::Result<()> {
    let moved = match from {
        None => sqlx::query(
            "INSERT INTO chain_cursor (chain_id, block_number, block_hash, updated_at) VALUES ($1, $2, $3, now()) \
             ON CONFLICT (chain_id) DO NOTHING",
        )
        .bind(chain_id)
        .bind(to.number as i64)
        .bind(to.hash.to_vec())
        .execute(&mut **tx)
        .await?,
        Some(from) => sqlx::query(
            "UPDATE chain_cursor SET block_number = $2, block_hash = $3, updated_at = now() \
             WHERE chain_id = $1 AND block_number = $4 AND block_hash = $5",
        )
        .bind(chain_id)
        .bind(to.number as i64)
        .bind(to.hash.to_vec())
        .bind(from.number as i64)
        .bind(from.hash.to_vec())
        .execute(&mut **tx)
        .await?,
    };
    if moved.rows_affected() != 1 {
        return Err(Error::CursorMoved {
            expected: from.map_or_else(|| "none".to_owned(), |c| c.number.to_string()),
        });
    }
    Ok(())
}

/// Final blocks need neither headers nor undo entries.
pub(super) async fn prune(
    tx: &mut Transaction<'_, Postgres>,
    chain_id: i64,
    finalized: u64,
) -> sqlx::Result<()> {
    let f = finalized as i64;
    sqlx::query("DELETE FROM indexer_undo WHERE chain_id = $1 AND block_number <= $2")
        .bind(chain_id)
        .bind(f)
        .execute(&mut **tx)
        .await?;
    // Keep the finalized block itself: it is the deepest possible common ancestor.
    sqlx::query("DELETE FROM blocks WHERE chain_id = $1 AND number < $2")
        .bind(chain_id)
        .bind(f)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Channels: `beatstream_blocks` always, and one per kind of row the batch changed. Delivered on commit.
pub(super) async fn notify(
    tx: &mut Transaction<'_, Postgres>,
    block: u64,
    changed: Changed,
) -> sqlx::Result<()> {
    let payload = serde_json::json!({ "block": block }).to_string();
    let channels = [
        ("beatstream_blocks", true),
        ("beatstream_accounts", changed.accounts),
        ("beatstream_settlements", changed.settlements),
        ("beatstream_earnings", changed.earnings),
        ("beatstream_grants", changed.grants),
        ("beatstream_artists", changed.artists),
        ("beatstream_tracks", changed.tracks),
        ("beatstream_revocations", changed.revocations),
        ("beatstream_splits", changed.splits),
        ("beatstream_tips", changed.tips),
    ];
    for (channel, on) in channels {
        if on {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(&payload)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}
