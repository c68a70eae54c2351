//! The connection pool, and reading columns of a row.

use std::time::Duration;

use beatstream_primitives::db::PoolBuilder;
use sqlx::{PgPool, Row, postgres::PgRow};

use crate::Result;

/// The API's database: a pool of read connections and the chain whose mirror it serves.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    pub(super) pool: PgPool,
    pub(super) chain_id: i64,
}

impl Db {
    /// Connects (every statement under `statement_timeout_ms`, at most `connections` at once) and migrates.
    pub(crate) async fn connect(
        database_url: &str,
        chain_id: i64,
        statement_timeout_ms: u64,
        connections: u32,
    ) -> Result<Self> {
        let pool = PoolBuilder::new(database_url)
            .application_name("beatstream-api")
            .statement_timeout(Duration::from_millis(statement_timeout_ms))
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(5))
            // sqlx's own default, which the API always had.
            .idle_timeout(Some(Duration::from_secs(600)))
            .connect()
            .await?;
        beatstream_primitives::db::migrate(&pool).await?;
        Ok(Self { pool, chain_id })
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
