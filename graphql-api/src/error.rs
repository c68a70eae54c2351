//! The error type of this crate.

/// Everything that can stop the GraphQL API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or makes no sense; the message says which flag to change.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The deployment file could not be read.
    #[error(transparent)]
    Deployment(#[from] beatstream_primitives::Error),
    /// A query failed, or Postgres could not be reached or migrated.
    #[error("database: {0}")]
    Database(Box<dyn std::error::Error + Send + Sync>),
    /// The listen address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving: {0}")]
    Serve(#[from] std::io::Error),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
