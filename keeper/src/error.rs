//! The error type of this crate. A leaf: it names no other module of the crate (`db/` converts its own errors).

use alloy::primitives::Address;

/// Everything that can stop the keeper or fail one of its steps.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or makes no sense; the message says which flag to change.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The signing key could not be loaded, or could not sign (the message never contains the key).
    #[error("keeper signer: {0}")]
    Signer(#[source] beatstream_signer::Error),
    /// The deployment file could not be read.
    #[error(transparent)]
    Deployment(#[from] beatstream_primitives::Error),
    /// A Postgres query failed (the database's own error; only `db/` produces it).
    #[error("database: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
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
    /// The keeper's account may not call `settleBatch` on the vault: only the owner's settlers settle (v2).
    #[error("{}", not_settler(.account, .vault, .owner, .from, .now))]
    NotSettler {
        /// The keeper's account.
        account: Address,
        /// The vault.
        vault: Address,
        /// The vault's owner, who allows settlers.
        owner: Address,
        /// When the account may start to settle (unix seconds), if the owner has allowed it.
        from: Option<u64>,
        /// The chain's latest block time.
        now: u64,
    },
    /// This keeper's lease was taken over; it stops writing at once.
    #[error("lost the keeper lease (epoch {0})")]
    LostLease(i64),
    /// A test's fail point was reached.
    #[error("fail point {0:?} reached")]
    FailPoint(FailPoint),
    /// The HTTP endpoint could not be served.
    #[error("http endpoint: {0}")]
    Http(#[from] std::io::Error),
}

/// Where a test makes the keeper stop as if the process were killed ([`Error::FailPoint`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailPoint {
    /// The batch is signed and journaled, nothing was broadcast.
    AfterJournal,
    /// The transaction was broadcast, the journal still says pending.
    AfterBroadcast,
    /// A hung process: the batch is decided and signed, and the process stops itself (SIGSTOP) before journaling
    /// it, until it is continued (SIGCONT); then it goes on to journal it under the epoch it decided under. Only for
    /// a keeper in a process of its own (`beatstream keeper`): it stops the whole process.
    StopBeforeJournal,
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn rpc(e: impl std::fmt::Display) -> Self {
        Self::Rpc(e.to_string())
    }
}

fn not_settler(
    account: &Address,
    vault: &Address,
    owner: &Address,
    from: &Option<u64>,
    now: &u64,
) -> String {
    match from {
        Some(from) if from > now => format!(
            "the keeper account {account} is not a settler of the vault {vault} yet: the owner has allowed it, and \
             it may settle from unix time {from} ({} s from the chain's latest block); start the keeper then",
            from - now
        ),
        _ => format!(
            "the keeper account {account} is not a settler of the vault {vault}, so its settlements would revert: \
             the vault's owner ({owner}) must call setSettler({account}, true) on the vault, which takes effect \
             after the vault's withdrawal delay; or run the keeper with the key of an account that is a settler"
        ),
    }
}
