//! All of the relay's SQL and the rows it reads and writes; the rest of the crate speaks in domain types and
//! never imports `sqlx`.
//!
//! - [`state`]: the one statement the balance guard decides on, at `hello` and in every group commit;
//! - [`store`]: reads at `hello` and `play`, and the start-up clean-up of a previous run's sessions;
//! - [`commit`]: the writer's connection and the statements of one group commit (locks, upserts, sessions);
//! - [`yellow`]: the Yellow submitter's queue (`yellow_app_sessions`, `yellow_states`).
//!
//! Funds, settled amounts, revocations, tracks and artists are the indexer's tables (mirrors of the chain); grants,
//! vouchers, sessions and Yellow app sessions are the relay's voucher book.

pub(crate) mod commit;
pub mod rows;
pub(crate) mod state;
pub mod store;
pub(crate) mod yellow;

use std::time::Duration;

use alloy::primitives::U256;
use beatstream_primitives::db::DatabaseArgs;

use crate::{Error, Result};

/// A pool of Postgres connections.
pub type Pool = sqlx::PgPool;

/// How one connection of its own (a writer's) reaches Postgres.
pub type ConnectOptions = sqlx::postgres::PgConnectOptions;

/// What Postgres (or the driver) failed with.
pub type DbError = sqlx::Error;

/// Opens the relay's pool (`max` connections) and applies pending migrations (or checks them, `--no-migrate`).
pub(crate) async fn connect(database: &DatabaseArgs, max: u32) -> Result<Pool> {
    let pool = database
        .pool()
        .application_name("beatstream-relay")
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .idle_timeout(Some(Duration::from_secs(600)))
        .connect()
        .await?;
    database.prepare_schema(&pool).await?;
    Ok(pool)
}

/// Whether Postgres answers (the health check).
pub(crate) async fn ping(pool: &Pool) -> Result<()> {
    sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(pool).await?;
    Ok(())
}

/// Parses a NUMERIC read as text.
pub(crate) fn parse_amount(s: &str) -> Result<U256> {
    U256::from_str_radix(s, 10)
        .map_err(|_| Error::Corrupt(format!("amount {s:?} is not a uint256")))
}
