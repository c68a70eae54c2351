//! The keeper's Postgres pool, and how a database error becomes the crate's [`Error`].

use std::time::Duration;

use beatstream_primitives::db::DatabaseArgs;
use sqlx::PgPool;

use crate::{Error, Result};

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(Box::new(e))
    }
}

/// The keeper's connection pool.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    pub(super) pool: PgPool,
}

impl Db {
    /// Connects and applies the workspace's migrations (or checks them, with `--no-migrate`).
    pub(crate) async fn connect(database: &DatabaseArgs) -> Result<Self> {
        let pool = database
            .pool()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .application_name("beatstream-keeper")
            .connect()
            .await?;
        database.prepare_schema(&pool).await?;
        Ok(Self { pool })
    }

    /// Closes every connection.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}
