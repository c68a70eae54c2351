//! The error type of this crate.

/// Everything that can stop the indexer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service is a placeholder: its logic has not been written yet.
    #[error("the indexer is not built yet")]
    NotBuilt,
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
