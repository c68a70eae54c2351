//! Rolling back to a common ancestor after a reorg: raw rows, derived rows from the undo log, headers, cursor.

use sqlx::{PgPool, Postgres, Transaction};

use super::{entities::*, entity, raw::TABLES, store::move_cursor};
use crate::chain::Cursor;

/// Rolls everything above `ancestor` back: raw events, derived rows (from the undo log), headers; moves the cursor
/// from `from` back to `ancestor`. One transaction.
pub(crate) async fn rollback(
    pool: &PgPool,
    chain_id: i64,
    from: Cursor,
    ancestor: Cursor,
) -> crate::Result<usize> {
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
    move_cursor(&mut tx, chain_id, Some(from), ancestor).await?;
    sqlx::query("SELECT pg_notify('beatstream_reorg', $1)")
        .bind(serde_json::json!({ "ancestor": ancestor.number }).to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(restored)
}

/// Restores every derived table to its state at `ancestor` from the undo log; returns the rows restored.
async fn rollback_derived(
    tx: &mut Transaction<'_, Postgres>,
    chain_id: i64,
    ancestor: u64,
) -> sqlx::Result<usize> {
    Ok(entity::rollback::<ListenerAccount>(tx, chain_id, ancestor).await?
        + entity::rollback::<PayeeEarnings>(tx, chain_id, ancestor).await?
        + entity::rollback::<GrantSpend>(tx, chain_id, ancestor).await?
        + entity::rollback::<SettledPair>(tx, chain_id, ancestor).await?
        + entity::rollback::<Artist>(tx, chain_id, ancestor).await?
        + entity::rollback::<ArtistText>(tx, chain_id, ancestor).await?
        + entity::rollback::<Track>(tx, chain_id, ancestor).await?
        + entity::rollback::<SettlementHourly>(tx, chain_id, ancestor).await?
        + entity::rollback::<GrantRevocation>(tx, chain_id, ancestor).await?
        + entity::rollback::<NonceFloor>(tx, chain_id, ancestor).await?
        + entity::rollback::<Split>(tx, chain_id, ancestor).await?
        + entity::rollback::<SplitInForce>(tx, chain_id, ancestor).await?
        + entity::rollback::<SplitEarnings>(tx, chain_id, ancestor).await?)
}
