//! The error type of this crate.

/// Everything that can stop the keeper or fail one of its steps.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or makes no sense; the message says which flag to change.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The signing key could not be loaded (the message never contains the key).
    #[error("keeper signer: {0}")]
    Signer(String),
    /// The deployment file could not be read.
    #[error(transparent)]
    Deployment(#[from] beatstream_primitives::Error),
    /// A Postgres query failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A JSON-RPC request failed or timed out.
    #[error("rpc: {0}")]
    Rpc(String),
    /// The RPC endpoint serves another chain than the deployment file.
    #[error("the RPC endpoint is chain {actual}, the deployment is for chain {expected}")]
    WrongChain {
        /// Chain id of the deployment.
        expected: u64,
        /// Chain id the endpoint reports.
        actual: u64,
    },
    /// This keeper's lease was taken over; it stops writing at once.
    #[error("lost the keeper lease (epoch {0})")]
    LostLease(i64),
    /// A test's fail point was reached.
    #[error("fail point {0:?} reached")]
    FailPoint(crate::FailPoint),
    /// The HTTP endpoint could not be served.
    #[error("http endpoint: {0}")]
    Http(#[from] std::io::Error),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn rpc(e: impl std::fmt::Display) -> Self {
        Self::Rpc(e.to_string())
    }
}
