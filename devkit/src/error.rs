//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can stop a fixture (anvil, a deployment, a database) from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Postgres query or connection failed.
    #[error("postgres: {0}")]
    Database(#[from] sqlx::Error),
    /// Connecting to or migrating the fresh database failed.
    #[error("test database: {0}")]
    Migrate(#[from] beatstream_primitives::Error),
    /// A database URL could not be parsed.
    #[error("invalid database url: {0}")]
    Url(#[from] url::ParseError),
    /// No Postgres server is reachable and none can be started here.
    #[error(
        "no Postgres for tests: set DATABASE_URL, run a server on 127.0.0.1:5432 \
         or install PostgreSQL so initdb and pg_ctl are on PATH ({0})"
    )]
    NoPostgres(String),
    /// The private Postgres cluster failed to start.
    #[error("starting a private Postgres cluster failed: {0}")]
    Cluster(String),
    /// A file system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The anvil binary from the npm toolchain is not installed.
    #[error("anvil not found at {}: run `make setup` first", .0.display())]
    AnvilMissing(PathBuf),
    /// The forge binary from the npm toolchain is not installed.
    #[error("forge not found at {}: run `make setup` first", .0.display())]
    ForgeMissing(PathBuf),
    /// The deploy script failed.
    #[error("deploying the contracts: {0}")]
    Deploy(String),
    /// Anvil did not start.
    #[error("starting anvil: {0}")]
    Anvil(#[from] alloy::node_bindings::NodeError),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
