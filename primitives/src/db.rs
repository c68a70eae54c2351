//! Postgres pool and migrations. The schema lives only in the top-level `migrations/`.

use std::time::Duration;

use sqlx::{
    PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::Result;

/// Every migration in `migrations/`, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// One migration that [`migrate`] applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedMigration {
    /// Version, the number in front of the file name.
    pub version: i64,
    /// Description, the rest of the file name.
    pub description: String,
}

/// Opens a connection pool, failing fast if the server cannot be reached.
pub async fn connect(url: &str) -> Result<PgPool> {
    let options: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        // Shared by the services of one process; a pooler in front scales further.
        .max_connections(16)
        .min_connections(0)
        // Fail with an error a person can act on rather than hang when Postgres is down.
        .acquire_timeout(Duration::from_secs(10))
        .idle_timeout(Duration::from_secs(300))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Applies pending migrations and returns the ones this call applied, oldest first.
///
/// Safe to run from several processes at once: sqlx takes an advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<Vec<AppliedMigration>> {
    let before = applied_versions(pool).await?;
    MIGRATOR.run(pool).await?;
    let applied = sqlx::query_as::<_, (i64, String)>(
        "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .filter(|(version, _)| !before.contains(version))
    .map(|(version, description)| AppliedMigration { version, description })
    .collect();
    Ok(applied)
}

/// Versions already recorded, or none on a database that was never migrated.
async fn applied_versions(pool: &PgPool) -> Result<Vec<i64>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar("SELECT version FROM _sqlx_migrations").fetch_all(pool).await?)
}
