//! The pool the loop reads through and opens batches on.

use sqlx::PgPool;

use super::{rollback, store, tx::BatchTx};
use crate::{Result, chain::Cursor};

/// The indexer's database.
#[derive(Clone, Debug)]
pub(crate) struct Db(PgPool);

impl Db {
    /// Connects and applies pending migrations (or checks them, with `--no-migrate`).
    pub(crate) async fn connect(
        database: &beatstream_primitives::db::DatabaseArgs,
    ) -> Result<Self> {
        let pool = database.pool().application_name("beatstream-indexer").connect().await?;
        database.prepare_schema(&pool).await?;
        Ok(Self(pool))
    }

    /// Opens a batch's transaction.
    pub(crate) async fn begin(&self) -> Result<BatchTx> {
        Ok(BatchTx(self.0.begin().await?))
    }

    /// The cursor of `chain_id`, if the chain was indexed before.
    pub(crate) async fn cursor(&self, chain_id: i64) -> Result<Option<Cursor>> {
        Ok(store::cursor(&self.0, chain_id).await?)
    }

    /// The stored hash of block `number`, if it is inside the kept window.
    pub(crate) async fn block_hash(
        &self,
        chain_id: i64,
        number: u64,
    ) -> Result<Option<alloy::primitives::B256>> {
        Ok(store::block_hash(&self.0, chain_id, number).await?)
    }

    /// The lowest block still kept for reorg detection.
    pub(crate) async fn lowest_kept_block(&self, chain_id: i64) -> Result<Option<u64>> {
        Ok(store::lowest_kept_block(&self.0, chain_id).await?)
    }

    /// Rolls everything above `ancestor` back and moves the cursor there from `from`; returns the derived rows
    /// restored.
    pub(crate) async fn rollback(
        &self,
        chain_id: i64,
        from: Cursor,
        ancestor: Cursor,
    ) -> Result<usize> {
        rollback::rollback(&self.0, chain_id, from, ancestor).await
    }
}

impl From<PgPool> for Db {
    fn from(pool: PgPool) -> Self {
        Self(pool)
    }
}

impl From<sqlx::Error> for crate::Error {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(Box::new(e))
    }
}
