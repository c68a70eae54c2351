//! Blocks as the indexer keeps them: the headers it checks for reorgs and the cursor it has indexed up to.

use alloy::primitives::B256;

/// A block header as the indexer keeps it for reorg detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRef {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Parent block hash.
    pub parent_hash: B256,
    /// Unix seconds.
    pub timestamp: u64,
}

/// The last fully indexed block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) number: u64,
    pub(crate) hash: B256,
}
