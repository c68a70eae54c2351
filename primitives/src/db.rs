//! Postgres: how the services reach it ([`DatabaseArgs`]), their pools ([`PoolBuilder`]) and the schema
//! ([`migrate`], [`check_schema`]). The schema lives only in the top-level `migrations/`.
//!
//! TLS follows libpq's URL parameters: `sslmode` (`disable`, `prefer` (the default: TLS when the server offers it),
//! `require`, `verify-ca`, `verify-full`) and `sslrootcert` (the CA to trust besides the system's store).

use std::{str::FromStr, time::Duration};

use sqlx::{
    PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::{Error, Result};

/// Default `--db-statement-cache`: sqlx's own.
pub const DEFAULT_STATEMENT_CACHE: usize = 100;

/// How a service reaches Postgres: flattened into every service's settings and `beatstream node`'s, so the flags
/// and their `BEATSTREAM_*` variables are the same everywhere.
#[derive(Clone, PartialEq, Eq, clap::Args)]
pub struct DatabaseArgs {
    /// Postgres connection URL; TLS from its `sslmode` and `sslrootcert` parameters, as libpq reads them.
    #[arg(long, env = "BEATSTREAM_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Postgres URL for what needs a session of its own: the keeper's leader lock and the API's `LISTEN`. Behind a
    /// transaction-mode pooler, a direct (or session-mode) URL; for an API on a read replica, the primary
    /// [default: --database-url].
    #[arg(long, env = "BEATSTREAM_SESSION_DATABASE_URL", hide_env_values = true)]
    pub session_database_url: Option<String>,
    /// Do not apply migrations at start; check that the schema is current and stop if it is not (`beatstream
    /// migrate` applies them). Implied on a read-only database (a standby).
    #[arg(long, env = "BEATSTREAM_NO_MIGRATE")]
    pub no_migrate: bool,
    /// What is between the services and `--database-url`: `none`, a pooler in `session` mode, or in `transaction`
    /// mode (PgBouncer, Supavisor, Neon's). Behind a pooler nothing is set at connect time (statement timeouts are
    /// set per transaction); in transaction mode the keeper's lock and the API's `LISTEN` need
    /// `--session-database-url`.
    #[arg(long, env = "BEATSTREAM_DB_POOLER", value_enum, default_value_t)]
    pub db_pooler: Pooler,
    /// Prepared statements each connection keeps; 0 turns the cache off.
    #[arg(long, env = "BEATSTREAM_DB_STATEMENT_CACHE", default_value_t = DEFAULT_STATEMENT_CACHE)]
    pub db_statement_cache: usize,
}

/// What sits between the services and Postgres.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Pooler {
    /// Postgres itself.
    #[default]
    None,
    /// A pooler in session mode: a server connection per client connection. Poolers refuse startup settings.
    Session,
    /// A pooler in transaction mode: a server connection lasts one transaction, so no session state (a lock,
    /// `LISTEN`, `SET`) survives it. It must carry prepared statements across server connections (PgBouncer 1.21+
    /// with `max_prepared_statements`, Supavisor, Neon's pooler).
    Transaction,
}

impl std::fmt::Debug for DatabaseArgs {
    /// URLs may carry passwords: only their host, port and database are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseArgs")
            .field("database_url", &redact_url(&self.database_url))
            .field("session_database_url", &self.session_database_url.as_deref().map(redact_url))
            .field("no_migrate", &self.no_migrate)
            .field("db_pooler", &self.db_pooler)
            .field("db_statement_cache", &self.db_statement_cache)
            .finish()
    }
}

impl DatabaseArgs {
    /// `url` with the defaults: migrations applied at start, no pooler, one URL for everything.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            database_url: url.into(),
            session_database_url: None,
            no_migrate: false,
            db_pooler: Pooler::None,
            db_statement_cache: DEFAULT_STATEMENT_CACHE,
        }
    }

    /// A pool builder for `--database-url` with these settings.
    pub fn pool(&self) -> PoolBuilder {
        PoolBuilder::new(&self.database_url)
            .pooler(self.db_pooler)
            .statement_cache(self.db_statement_cache)
    }

    /// The URL of connections that hold a session: `--session-database-url`, else `--database-url`.
    pub fn session_url(&self) -> &str {
        self.session_database_url.as_deref().unwrap_or(&self.database_url)
    }

    /// Options for one connection of its own to `--database-url` (outside the pool), with the statement cache
    /// setting.
    pub fn connect_options(&self) -> Result<PgConnectOptions> {
        connect_options(&self.database_url, self.db_pooler, self.db_statement_cache)
    }

    /// Options for one session connection (`session_url`), with the statement cache setting.
    pub fn session_options(&self) -> Result<PgConnectOptions> {
        let pooler =
            if self.session_database_url.is_some() { Pooler::None } else { self.db_pooler };
        connect_options(self.session_url(), pooler, self.db_statement_cache)
    }

    /// Checks the settings once at start-up, saying what to change. `needs_session` is whether the service holds
    /// session state (a lock, `LISTEN`), which a transaction-mode pooler cannot keep.
    pub fn validate(&self, needs_session: bool) -> Result<()> {
        for url in std::iter::once(&self.database_url).chain(&self.session_database_url) {
            let invalid = |why: String| {
                Error::Config(format!("invalid Postgres URL {}: {why}", redact_url(url)))
            };
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(invalid("it must start with postgres:// or postgresql://".into()));
            }
            PgConnectOptions::from_str(url).map_err(|e| invalid(e.to_string()))?;
        }
        if needs_session
            && self.db_pooler == Pooler::Transaction
            && self.session_database_url.is_none()
        {
            return Err(Error::Config(
                "--db-pooler transaction needs --session-database-url (BEATSTREAM_SESSION_DATABASE_URL): a direct \
                 or session-mode URL for the keeper's lock and the API's LISTEN"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Brings the schema to this build's version at start (`beatstream migrate`'s work), or, with
    /// `--no-migrate` or on a read-only database, checks that it is there already.
    pub async fn prepare_schema(&self, pool: &PgPool) -> Result<()> {
        if self.no_migrate {
            return check_schema(pool).await;
        }
        let read_only: bool = sqlx::query_scalar(
            "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'",
        )
        .fetch_one(pool)
        .await?;
        if read_only {
            tracing::info!(target: "beatstream::db", "read-only database: checking the schema instead of migrating");
            return check_schema(pool).await;
        }
        migrate(pool).await.map(drop)
    }
}

/// Options for `url` with the statement cache, and nothing a pooler in front would refuse: behind one, only the
/// startup parameters PgBouncer and Supavisor know (sqlx's `extra_float_digits` is not one).
fn connect_options(url: &str, pooler: Pooler, statement_cache: usize) -> Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(url)?.statement_cache_capacity(statement_cache);
    Ok(match pooler {
        Pooler::None => options,
        Pooler::Session | Pooler::Transaction => options.extra_float_digits(None),
    })
}

/// `url` without its password and parameters, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path()
        ),
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

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
    pooler: Pooler,
    statement_cache: usize,
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
            pooler: Pooler::None,
            statement_cache: DEFAULT_STATEMENT_CACHE,
        }
    }

    /// What is between the pool and Postgres. Behind a pooler nothing is set at connect time:
    /// [`statement_timeout`](Self::statement_timeout) is left to the caller to set per transaction
    /// ([`PoolBuilder::per_transaction_statement_timeout`] says whether it must).
    pub fn pooler(mut self, pooler: Pooler) -> Self {
        self.pooler = pooler;
        self
    }

    /// Prepared statements each connection caches (0: none).
    pub fn statement_cache(mut self, capacity: usize) -> Self {
        self.statement_cache = capacity;
        self
    }

    /// Whether the statement timeout must be set per transaction (`SET LOCAL statement_timeout`) because it cannot
    /// be a setting of the connection: behind a pooler.
    pub fn per_transaction_statement_timeout(&self) -> bool {
        self.pooler != Pooler::None
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
        let mut options = connect_options(&self.url, self.pooler, self.statement_cache)?;
        if let Some(name) = &self.application_name {
            // PgBouncer and Supavisor pass `application_name` on; it is a startup parameter they know.
            options = options.application_name(name);
        }
        if let Some(timeout) = self.statement_timeout
            && self.pooler == Pooler::None
        {
            // A startup `options` parameter: poolers refuse it (PgBouncer: "unsupported startup parameter").
            options =
                options.options([("statement_timeout", format!("{}ms", timeout.as_millis()))]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(self.min_connections)
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(self.idle_timeout)
            .connect_with(options)
            .await
            .map_err(|e| {
                if e.to_string().contains("unsupported startup parameter") {
                    Error::Config(format!(
                        "{}: {e}; a connection pooler refuses settings at connect time: run with --db-pooler \
                         session or --db-pooler transaction (BEATSTREAM_DB_POOLER)",
                        redact_url(&self.url)
                    ))
                } else {
                    Error::Database(e)
                }
            })?;
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

/// Checks that every migration of this build is applied, without changing anything: what a service started with
/// `--no-migrate` (or on a read-only database) does instead of [`migrate`]. Migrations newer than this build (a
/// newer release migrated first) are allowed.
pub async fn check_schema(pool: &PgPool) -> Result<()> {
    let applied = applied_versions(pool).await?;
    let needed = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let missing = MIGRATOR.iter().any(|m| !applied.contains(&m.version));
    if missing {
        let found = applied.iter().copied().max().unwrap_or(0);
        return Err(Error::SchemaBehind { found, needed });
    }
    Ok(())
}

/// Versions already recorded, or none on a database that was never migrated.
async fn applied_versions(pool: &PgPool) -> Result<Vec<i64>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(pool)
        .await?)
}
