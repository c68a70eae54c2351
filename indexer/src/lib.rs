//! Indexer: mirrors the vault, the BeatStream registry and the `beatstream.eth` subtree of the ENS registry into
//! Postgres, reorg-safe and crash-safe, so that everything mirrored can be rebuilt by re-indexing from the
//! deployment block and comes out identical.
//!
//! Each batch of blocks is one transaction: raw events, derived state, undo entries for blocks inside the
//! unfinalised window, recent block hashes and the cursor, then `NOTIFY` on a channel per kind of change.

mod chain;
mod config;
mod db;
mod error;
mod events;
mod metrics;
mod progress;
mod ranges;
mod server;
mod service;
mod source;
mod state;
mod sync;
mod write;

pub use chain::BlockRef;
pub use config::{
    Config, DEFAULT_BATCH_EVENTS, DEFAULT_CONFIRMATIONS, DEFAULT_DEPLOYMENT, DEFAULT_ENS_ROOT,
    DEFAULT_POLL_INTERVAL_MS, DEFAULT_RANGE_INITIAL, DEFAULT_RANGE_MAX, DEFAULT_RANGE_MIN,
    DEFAULT_READY_MAX_LAG, DEFAULT_REORG_WINDOW, DEFAULT_RPC_CONCURRENCY, Options,
};
pub use error::{Error, Result};
pub use metrics::Metrics;
pub use service::{run, run_with_metrics, run_with_source};
pub use source::{ChainSource, RpcSource};
