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
use beatstream_primitives::db::PoolBuilder;

use crate::{Error, Result};

/// A pool of Postgres connections.
pub type Pool = sqlx::PgPool;

/// What Postgres (or the driver) failed with.
pub type DbError = sqlx::Error;

/// Opens the relay's pool (`max` connections) and applies pending migrations.
pub(crate) async fn connect(url: &str, max: u32) -> Result<Pool> {
    let pool = PoolBuilder::new(url)
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .idle_timeout(Some(Duration::from_secs(600)))
        .connect()
        .await?;
    beatstream_primitives::db::migrate(&pool).await?;
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every `.rs` file under `dir`.
    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn only_db_speaks_sql() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let outside: Vec<_> = files
            .iter()
            .filter(|f| !f.starts_with(src.join("db")))
            .filter(|f| std::fs::read_to_string(f).unwrap().contains("sqlx"))
            .collect();
        assert!(outside.is_empty(), "sqlx used outside db/: {outside:?}");
    }
}
