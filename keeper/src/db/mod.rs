//! Everything the keeper keeps in Postgres, and the only module that speaks SQL.
//!
//! - [`journal`]: the write-ahead journal of batches, items and signed attempts; every write is fenced by the lease
//!   epoch the keeper holds.
//! - [`book`]: the settleable vouchers (the relay's book against what is settled) and the holds on them.
//! - [`lease`]: the advisory lock and lease row that make one keeper the active one.
//! - [`types`]: the journal's states as enums stored as text.

mod book;
mod journal;
mod lease;
mod types;

use std::time::Duration;

use beatstream_primitives::db::PoolBuilder;
use sqlx::PgPool;

pub(crate) use journal::{Attempt, Journal, Mined, NewBatch, OpenBatch};
pub(crate) use lease::LockConnection;
pub(crate) use types::{AttemptKind, BatchKind, BatchStatus, Outcome, SkipReason};

use crate::{Error, Result};

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(Box::new(e))
    }
}

/// The keeper's connection pool.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    pool: PgPool,
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
