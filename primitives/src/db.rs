//! Postgres pool and migrations. The schema lives only in the top-level `migrations/`.

use std::{str::FromStr, time::Duration};

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

/// Opens a connection pool with the [`PoolBuilder`] defaults, failing fast if the server cannot be reached.
pub async fn connect(url: &str) -> Result<PgPool> {
    PoolBuilder::new(url).connect().await
}

/// How a service builds its Postgres pool: the one place every service's pool options live.
///
/// ```no_run
/// # async fn f() -> beatstream_primitives::Result<()> {
/// use std::time::Duration;
/// let pool = beatstream_primitives::db::PoolBuilder::new("postgres://localhost/beatstream")
///     .max_connections(8)
///     .application_name("beatstream-api")
///     .statement_timeout(Duration::from_secs(5))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `connect`"]
pub struct PoolBuilder {
    url: String,
    max_connections: u32,
    min_connections: u32,
    acquire_timeout: Duration,
    idle_timeout: Option<Duration>,
    application_name: Option<String>,
    statement_timeout: Option<Duration>,
}

impl PoolBuilder {
    /// Default [`max_connections`](Self::max_connections): shared by the services of one process; a pooler in
    /// front scales further.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;
    /// Default [`acquire_timeout`](Self::acquire_timeout): fail with an error a person can act on rather than
    /// hang when Postgres is down.
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default [`idle_timeout`](Self::idle_timeout).
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

    /// A pool of `url` with the defaults: 16 connections at most, none kept open when idle, a 10 s acquire
    /// timeout, idle connections closed after 5 minutes, no application name and no statement timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            min_connections: 0,
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
            idle_timeout: Some(Self::DEFAULT_IDLE_TIMEOUT),
            application_name: None,
            statement_timeout: None,
        }
    }

    /// Most connections open at once.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Connections kept open even when idle.
    pub fn min_connections(mut self, n: u32) -> Self {
        self.min_connections = n;
        self
    }

    /// How long a query waits for a free connection (or the first connect) before failing.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// How long an idle connection stays open; `None` keeps it.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The `application_name` Postgres shows for these connections (`pg_stat_activity`).
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }

    /// Postgres cancels any statement of these connections that runs longer (whole milliseconds).
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = Some(timeout);
        self
    }

    /// Opens the pool, failing fast (within the acquire timeout) if the server cannot be reached.
    pub async fn connect(self) -> Result<PgPool> {
        let mut options = PgConnectOptions::from_str(&self.url)?;
        if let Some(name) = &self.application_name {
            options = options.application_name(name);
        }
        if let Some(timeout) = self.statement_timeout {
            options =
                options.options([("statement_timeout", format!("{}ms", timeout.as_millis()))]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(self.min_connections)
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(self.idle_timeout)
            .connect_with(options)
            .await?;
        Ok(pool)
    }
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
