//! A batch's transaction.

use sqlx::{Postgres, Transaction};

use super::{raw, store, store::Changed};
use crate::{
    Result,
    chain::{BlockRef, Cursor},
};

/// One batch's transaction: everything the batch writes goes through it, and it commits all or nothing.
pub(crate) struct BatchTx(pub(super) Transaction<'static, Postgres>);

impl BatchTx {
    /// Appends raw rows.
    pub(crate) async fn copy_raw(&mut self, raw: raw::RawBatch, chain_id: i64) -> Result<()> {
        Ok(raw.insert(&mut self.0, chain_id).await?)
    }

    /// Stores the headers of the batch's blocks inside the unfinalised window.
    pub(crate) async fn insert_headers(
        &mut self,
        chain_id: i64,
        headers: &[BlockRef],
    ) -> Result<()> {
        Ok(store::insert_headers(&mut self.0, chain_id, headers).await?)
    }

    /// Moves the cursor from `from` to `to`; [`crate::Error::CursorMoved`] if it is not at `from`.
    pub(crate) async fn move_cursor(
        &mut self,
        chain_id: i64,
        from: Option<Cursor>,
        to: Cursor,
    ) -> Result<()> {
        store::move_cursor(&mut self.0, chain_id, from, to).await
    }

    /// Drops headers and undo entries of final blocks.
    pub(crate) async fn prune(&mut self, chain_id: i64, finalized: u64) -> Result<()> {
        Ok(store::prune(&mut self.0, chain_id, finalized).await?)
    }

    /// Queues the batch's notifications (delivered on commit).
    pub(crate) async fn notify(&mut self, block: u64, changed: Changed) -> Result<()> {
        Ok(store::notify(&mut self.0, block, changed).await?)
    }

    /// Commits.
    pub(crate) async fn commit(self) -> Result<()> {
        Ok(self.0.commit().await?)
    }
}
