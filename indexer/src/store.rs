//! The indexer's writes: one transaction per batch of blocks, holding the raw events, the derived rows, the undo
//! log, the recent block hashes and the cursor, so a crash at any point leaves either all of a batch or none of it.

use alloy::primitives::B256;
use sqlx::{PgPool, Postgres, Transaction};

use crate::{
    events::{Event, EventKind},
    raw::{RawBatch, TABLES},
    state::{Changed, Derived, Remembered, Root, rollback as rollback_derived},
};

/// A block header as the indexer keeps it for reorg detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRef {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Parent block hash.
    pub parent_hash: B256,
    /// Unix seconds.
    pub timestamp: u64,
}

/// The last fully indexed block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) number: u64,
    pub(crate) hash: B256,
}

/// What one committed batch did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Written {
    pub(crate) events: usize,
    pub(crate) inconsistencies: u64,
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

/// One batch of consecutive blocks `[from, to]` to commit.
pub(crate) struct Batch<'a> {
    pub(crate) chain_id: i64,
    pub(crate) root: &'a Root,
    /// Decoded events in chain order.
    pub(crate) events: Vec<Event>,
    /// Headers of the blocks of this batch inside the unfinalised window (for reorg detection).
    pub(crate) headers: Vec<BlockRef>,
    /// The batch's last block: the new cursor.
    pub(crate) cursor: Cursor,
    /// Blocks above this are inside the unfinalised window: their derived changes get undo entries.
    pub(crate) finalized: u64,
}

/// Commits a batch: raw events, derived state, undo log, headers, cursor, notifications. Derived rows in `known`
/// are taken from there rather than read back; once committed, the batch's rows join `known`. On an error the caller
/// must clear `known` (a failed COMMIT may still have committed).
pub(crate) async fn commit(
    pool: &PgPool,
    batch: Batch<'_>,
    known: &mut Remembered,
) -> sqlx::Result<Written> {
    let started = std::time::Instant::now();
    let mut tx = pool.begin().await?;
    let chain_id = batch.chain_id;
    let mut derived = Derived::default();
    derived.prefetch(&mut tx, chain_id, batch.root, known, &batch.events).await?;
    let prefetched = started.elapsed();
    let mut raw = RawBatch::new();
    let mut changed = Changed::default();
    for event in &batch.events {
        if let EventKind::Ens(e) = &event.kind
            && !derived.in_subtree(batch.root, e)
        {
            continue;
        }
        raw.push(event);
        derived.apply(batch.root, event, event.at.block_number > batch.finalized, &mut changed);
    }
    let written = Written { events: raw.len(), inconsistencies: derived.inconsistencies };
    let folded = started.elapsed();
    raw.insert(&mut tx, chain_id).await?;
    let raw_written = started.elapsed();
    derived.flush(&mut tx, chain_id).await?;
    let derived_written = started.elapsed();
    insert_headers(&mut tx, chain_id, &batch.headers).await?;
    set_cursor(&mut tx, chain_id, batch.cursor).await?;
    prune(&mut tx, chain_id, batch.finalized).await?;
    notify(&mut tx, batch.cursor.number, changed).await?;
    tx.commit().await?;
    derived.remember(known);
    tracing::debug!(
        target: "beatstream::indexer::store",
        events = written.events,
        prefetch_ms = prefetched.as_millis() as u64,
        fold_ms = (folded - prefetched).as_millis() as u64,
        raw_ms = (raw_written - folded).as_millis() as u64,
        derived_ms = (derived_written - raw_written).as_millis() as u64,
        rest_ms = (started.elapsed() - derived_written).as_millis() as u64,
        "batch timings"
    );
    Ok(written)
}

/// Rolls everything above `ancestor` back: raw events, derived rows (from the undo log), headers; sets the cursor
/// to `ancestor`. One transaction.
pub(crate) async fn rollback(
    pool: &PgPool,
    chain_id: i64,
    ancestor: Cursor,
) -> sqlx::Result<usize> {
    let mut tx = pool.begin().await?;
    let restored = rollback_derived(&mut tx, chain_id, ancestor.number).await?;
    let a = ancestor.number as i64;
    for table in TABLES.iter().copied().chain(["indexer_undo"]) {
        sqlx::query(&format!("DELETE FROM {table} WHERE chain_id = $1 AND block_number > $2"))
            .bind(chain_id)
            .bind(a)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("DELETE FROM blocks WHERE chain_id = $1 AND number > $2")
        .bind(chain_id)
        .bind(a)
        .execute(&mut *tx)
        .await?;
    set_cursor(&mut tx, chain_id, ancestor).await?;
    sqlx::query("SELECT pg_notify('beatstream_reorg', $1)")
        .bind(serde_json::json!({ "ancestor": ancestor.number }).to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(restored)
}

async fn insert_headers(
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
    .bind(headers.iter().map(|h| crate::sql::clamp_time(h.timestamp)).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn set_cursor(
    tx: &mut Transaction<'_, Postgres>,
    chain_id: i64,
    cursor: Cursor,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO chain_cursor (chain_id, block_number, block_hash, updated_at) VALUES ($1, $2, $3, now()) \
         ON CONFLICT (chain_id) DO UPDATE SET block_number = EXCLUDED.block_number, \
         block_hash = EXCLUDED.block_hash, updated_at = now()",
    )
    .bind(chain_id)
    .bind(cursor.number as i64)
    .bind(cursor.hash.to_vec())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Final blocks need neither headers nor undo entries.
async fn prune(
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
async fn notify(
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
