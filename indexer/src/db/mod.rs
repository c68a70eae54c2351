//! Every SQL statement of the indexer and the rows they write: the raw tables ([`raw`]), the derived tables
//! ([`entities`], read and written through [`entity`]'s caches), the bulk-writing toolkit ([`sql`]) and the batch's
//! bookkeeping ([`store`]). Nothing outside this module uses `sqlx`: the loop holds a [`Db`], a batch its
//! [`BatchTx`].

pub(crate) mod entities;
pub(crate) mod entity;
pub(crate) mod raw;
pub(crate) mod sql;
pub(crate) mod store;

pub(crate) use store::Changed;

use sqlx::{PgPool, Postgres, Transaction};

use crate::{
    Result,
    chain::{BlockRef, Cursor},
};

/// The indexer's database.
#[derive(Clone, Debug)]
pub(crate) struct Db(PgPool);

impl Db {
    /// Connects and applies pending migrations.
    pub(crate) async fn connect(database_url: &str) -> Result<Self> {
        let pool = beatstream_primitives::db::connect(database_url).await?;
        beatstream_primitives::db::migrate(&pool).await?;
        Ok(Self(pool))
    }

    /// Opens a batch's transaction.
    pub(crate) async fn begin(&self) -> Result<BatchTx> {
        Ok(BatchTx(self.0.begin().await?))
    }

    /// The cursor of `chain_id`, if the chain was indexed before.
    pub(crate) async fn cursor(&self, chain_id: i64) -> Result<Option<Cursor>> {
        Ok(store::cursor(self, chain_id).await?)
    }

    /// The stored hash of block `number`, if it is inside the kept window.
    pub(crate) async fn block_hash(
        &self,
        chain_id: i64,
        number: u64,
    ) -> Result<Option<alloy::primitives::B256>> {
        Ok(store::block_hash(self, chain_id, number).await?)
    }

    /// The lowest block still kept for reorg detection.
    pub(crate) async fn lowest_kept_block(&self, chain_id: i64) -> Result<Option<u64>> {
        Ok(store::lowest_kept_block(self, chain_id).await?)
    }

    /// Rolls everything above `ancestor` back and moves the cursor there from `from`; returns the derived rows
    /// restored.
    pub(crate) async fn rollback(
        &self,
        chain_id: i64,
        from: Cursor,
        ancestor: Cursor,
    ) -> Result<usize> {
        store::rollback(self, chain_id, from, ancestor).await
    }
}

impl From<PgPool> for Db {
    fn from(pool: PgPool) -> Self {
        Self(pool)
    }
}

/// One batch's transaction: everything the batch writes goes through it, and it commits all or nothing.
pub(crate) struct BatchTx(Transaction<'static, Postgres>);

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

impl From<sqlx::Error> for crate::Error {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(Box::new(e))
    }
}
#[cfg(test)]
mod tests {
    /// Outside `db/`, no source file's code (its tests aside) uses `sqlx`: the rest of the crate speaks in rows.
    #[test]
    fn only_db_uses_sqlx() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        let mut dirs = vec![src.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if path != src.join("db") {
                        dirs.push(path);
                    }
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                    if code.contains("sqlx") {
                        offenders.push(path.display().to_string());
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "sqlx used outside db/: {offenders:?}");
    }
}
