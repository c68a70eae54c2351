//! The error type of this crate.

/// Everything that can go wrong in the indexer. [`Error::is_fatal`] tells the loop which errors stop it; all others
/// are logged, counted and retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A query or transaction failed.
    #[error("database: {0}")]
    Database(Box<dyn std::error::Error + Send + Sync>),
    /// Reading the deployment file or migrating failed at start-up.
    #[error(transparent)]
    Primitives(#[from] beatstream_primitives::Error),
    /// A JSON-RPC request failed or timed out.
    #[error("rpc: {0}")]
    Rpc(String),
    /// A log of a mirrored contract has a known event topic but data that does not decode.
    #[error("cannot decode log {log_index} of block {block}: {reason}")]
    Decode {
        /// Block number.
        block: u64,
        /// Log index in the block.
        log_index: u64,
        /// What the decoder said.
        reason: String,
    },
    /// A log without block number, hash, transaction or index (a pending log).
    #[error("the node returned a pending log for a mined range")]
    PendingLog,
    /// The node answered inconsistently (logs of a block hash other than its header's, headers that do not link):
    /// a reorg is happening under us or a load balancer spans nodes at different heads. Retried.
    #[error("inconsistent chain data: {0}")]
    Inconsistent(String),
    /// A batch found the cursor elsewhere than where the batch starts when it came to commit: another writer (a
    /// second indexer on the same database) moved it. Nothing of the batch is written; the loop re-reads the
    /// cursor and goes on from there.
    #[error(
        "the cursor moved under this indexer (expected it at {expected}); is another indexer writing here?"
    )]
    CursorMoved {
        /// Where the batch expected the cursor: a block number, or "none" before the first batch.
        expected: String,
    },
    /// The chain reorganised below the oldest block the indexer keeps: it cannot roll back exactly, so it stops
    /// rather than guess. Re-index from the deployment block, or raise `--reorg-window`.
    #[error(
        "reorg deeper than the kept window: block {block} differs and no block back to {lowest} matches; \
         stop, raise --reorg-window and re-index (no data was changed)"
    )]
    ReorgBeyondWindow {
        /// The block found to differ.
        block: u64,
        /// The oldest block kept.
        lowest: u64,
    },
    /// The RPC serves a different chain than the deployment file.
    #[error("the RPC is chain {rpc} but the deployment file is for chain {deployment}")]
    WrongChain {
        /// Chain id of the RPC.
        rpc: u64,
        /// Chain id in the deployment file.
        deployment: u64,
    },
    /// A setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A task of the indexer's own (a fetch, a batch's stage or fold) was cancelled: the runtime is shutting down.
    #[error("the {0} task was cancelled; the runtime is shutting down")]
    TaskCancelled(&'static str),
    /// The HTTP listener for health and metrics failed.
    #[error("health/metrics server: {0}")]
    Server(#[from] std::io::Error),
}

impl Error {
    /// Whether the indexer must stop rather than retry.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::ReorgBeyondWindow { .. }
                | Self::WrongChain { .. }
                | Self::Config(_)
                | Self::Server(_)
        )
    }
}

/// The outcome of a task the indexer spawned. A panic in it is a bug: it goes on unwinding here, in the loop that
/// awaited the task, as it would have without the task.
pub(crate) fn joined<T>(
    task: &'static str,
    joined: Result<T, tokio::task::JoinError>,
) -> Result<T> {
    match joined {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::TaskCancelled(task)),
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
