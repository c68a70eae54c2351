//! The keeper's Postgres pool, and how a database error becomes the crate's [`Error`].

use std::time::Duration;

use beatstream_primitives::db::PoolBuilder;
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
    /// Connects and applies the workspace's migrations.
    pub(crate) async fn connect(database_url: &str) -> Result<Self> {
        let pool = PoolBuilder::new(database_url)
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .application_name("beatstream-keeper")
            .connect()
            .await?;
        beatstream_primitives::db::migrate(&pool).await?;
        Ok(Self { pool })
    }

    /// Closes every connection.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}
