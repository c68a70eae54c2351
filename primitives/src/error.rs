//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong in `beatstream-primitives`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Connecting to or querying Postgres failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the migrations in `migrations/` failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A setting that parses but cannot work, with what to change.
    #[error("{0}")]
    Config(String),
    /// The database's schema is not the one this build needs, and this service was told not to migrate it.
    #[error(
        "the database schema is at migration {found} and this build needs {needed}: run `beatstream migrate` \
         (with a role that may change the schema), then start again"
    )]
    SchemaBehind {
        /// The newest migration applied (0 for none).
        found: i64,
        /// The newest migration of this build.
        needed: i64,
    },
    /// A USDC amount string could not be parsed.
    #[error("invalid USDC amount {input:?}: {reason}")]
    InvalidAmount {
        /// The string that was given.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A contract call or transaction failed (the RPC's or the contract's message).
    #[error("chain error: {0}")]
    Chain(String),
    /// A signer failed to sign.
    #[error("signing failed: {0}")]
    Signing(String),
    /// A signature was rejected before or during recovery.
    #[error("invalid signature: {0}")]
    InvalidSignature(&'static str),
    /// The deployment file could not be read.
    #[error("cannot read deployment file {}: {source}", path.display())]
    DeploymentRead {
        /// Path of the file.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The deployment file is not the expected JSON.
    #[error("invalid deployment file {}: {source}", path.display())]
    DeploymentParse {
        /// Path of the file.
        path: PathBuf,
        /// Underlying JSON error, with line and column.
        source: serde_json::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
