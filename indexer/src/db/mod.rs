//! Every SQL statement of the indexer and the rows they write: the raw tables ([`raw`]), the derived tables
//! ([`entities`], read and written through [`entity`]'s caches), the bulk-writing toolkit ([`sql`]), the batch's
//! bookkeeping ([`store`]) and the rollback after a reorg. Nothing outside this module uses `sqlx`: the loop holds a
//! [`Db`], a batch its [`BatchTx`].

mod conn;
pub(crate) mod entities;
pub(crate) mod entity;
pub(crate) mod raw;
mod rollback;
pub(crate) mod sql;
pub(crate) mod store;
mod tx;

pub(crate) use conn::Db;
pub(crate) use store::Changed;
pub(crate) use tx::BatchTx;
