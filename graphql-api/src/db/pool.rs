//! The connection pools, the connection a read runs on, and reading columns of a row.

use std::{
    ops::{Deref, DerefMut},
    time::Duration,
};

use beatstream_primitives::db::{DatabaseArgs, PoolBuilder};
use sqlx::{
    PgConnection, PgPool, Postgres, Row, Transaction,
    pool::PoolConnection,
    postgres::{PgPoolOptions, PgRow},
};

use crate::Result;

/// The API's database: a pool of read connections, the chain whose mirror it serves, and where `LISTEN` goes.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    pub(super) pool: PgPool,
    pub(super) chain_id: i64,
    /// Connections for `LISTEN`: `--session-database-url` (the primary when `pool` is a replica).
    pub(super) session: PgPool,
    /// `pool` is a standby: a notification from the primary is read only once the standby has replayed it.
    pub(super) replica: bool,
    /// Behind a transaction-mode pooler each read is a read-only transaction that sets this timeout itself.
    per_transaction_timeout: Option<Duration>,
}

impl Db {
    /// Connects (every statement under `statement_timeout_ms`, at most `connections` at once) and migrates, or
    /// only checks the schema on a read-only database or with `--no-migrate`.
    pub(crate) async fn connect(
        database: &DatabaseArgs,
        chain_id: i64,
        statement_timeout_ms: u64,
        connections: u32,
    ) -> Result<Self> {
        let timeout = Duration::from_millis(statement_timeout_ms);
        let builder: PoolBuilder = database
            .pool()
            .application_name("beatstream-api")
            .statement_timeout(timeout)
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(5))
            // sqlx's own default, which the API always had.
            .idle_timeout(Some(Duration::from_secs(600)));
        let per_transaction_timeout =
            builder.per_transaction_statement_timeout().then_some(timeout);
        let pool = builder.connect().await?;
        database.prepare_schema(&pool).await?;
        let replica: bool =
            sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&pool).await?;
        // `LISTEN` holds one connection (and another while it reconnects); opened lazily by the hub.
        let session = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(
                database.session_options()?.application_name("beatstream-api-listen"),
            );
        Ok(Self { pool, chain_id, session, replica, per_transaction_timeout })
    }

    /// The connection one read runs on: a pooled connection, or behind a transaction-mode pooler a read-only
    /// transaction under the statement timeout (`SET LOCAL`), which also keeps the read on one server connection.
    pub(super) async fn reader(&self) -> sqlx::Result<Reader> {
        Ok(match self.per_transaction_timeout {
            None => Reader::Conn(self.pool.acquire().await?),
            Some(timeout) => Reader::Tx(
                self.pool
                    .begin_with(format!(
                        "BEGIN READ ONLY; SET LOCAL statement_timeout = {}",
                        timeout.as_millis()
                    ))
                    .await?,
            ),
        })
    }
}

/// A connection a read runs on (see [`Db::reader`]); a transaction is rolled back when it is dropped.
pub(super) enum Reader {
    Conn(PoolConnection<Postgres>),
    Tx(Transaction<'static, Postgres>),
}

impl Deref for Reader {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        match self {
            Self::Conn(c) => c,
            Self::Tx(t) => t,
        }
    }
}

impl DerefMut for Reader {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            Self::Conn(c) => c,
            Self::Tx(t) => t,
        }
    }
}

impl From<sqlx::Error> for crate::Error {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(Box::new(e))
    }
}

pub(super) fn i(row: &PgRow, col: &str) -> sqlx::Result<i64> {
    row.try_get::<i64, _>(col)
}

pub(super) fn s(row: &PgRow, col: &str) -> sqlx::Result<String> {
    row.try_get::<String, _>(col)
}

pub(super) fn b(row: &PgRow, col: &str) -> sqlx::Result<Vec<u8>> {
    row.try_get::<Vec<u8>, _>(col)
}
