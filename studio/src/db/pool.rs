//! The studio's Postgres pool, and how a database error becomes the crate's [`Error`].

use std::time::Duration;

use beatstream_primitives::db::DatabaseArgs;
use sqlx::PgPool;

use crate::{Error, Result};

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(Box::new(e))
    }
}

/// The studio's connection pool, for one chain's sign-ins.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    pub(super) pool: PgPool,
    pub(super) chain_id: i64,
}

impl Db {
    /// Connects (at most `connections` at once) and applies the workspace's migrations (or checks them, with
    /// `--no-migrate`).
    pub(crate) async fn connect(
        database: &DatabaseArgs,
        chain_id: u64,
        connections: u32,
    ) -> Result<Self> {
        let database_error = |e: beatstream_primitives::Error| Error::Database(Box::new(e));
        let pool = database
            .pool()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(5))
            .application_name("beatstream-studio")
            .statement_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(database_error)?;
        database.prepare_schema(&pool).await.map_err(database_error)?;
        Ok(Self { pool, chain_id: chain_id as i64 })
    }
}
