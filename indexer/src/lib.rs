//! Indexer: mirrors the vault, the BeatStream registry and the `beatstream.eth` subtree of the ENS registry into
//! Postgres, reorg-safe and crash-safe, so that everything mirrored can be rebuilt by re-indexing from the
//! deployment block and comes out identical.
//!
//! Each batch of blocks is one transaction: raw events, derived state, undo entries for blocks inside the
//! unfinalised window, recent block hashes and the cursor, then `NOTIFY` on a channel per kind of change.

mod config;
mod error;
mod events;
mod metrics;
mod progress;
mod ranges;
mod raw;
mod server;
mod source;
mod sql;
mod state;
mod store;
mod sync;

use std::sync::Arc;

pub use config::{Config, Options};
pub use error::{Error, Result};
pub use metrics::Metrics;
pub use source::{ChainSource, RpcSource};
pub use store::BlockRef;

use beatstream_primitives::Deployment;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{
    events::Sources,
    ranges::RangeSize,
    state::{Root, namehash},
    sync::{SyncConfig, Syncer},
};

/// Runs the indexer until `shutdown` is cancelled, serving `/health`, `/ready` and `/metrics` if configured.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    run_with_metrics(config, Metrics::new(), shutdown).await
}

/// [`run`] with metrics the caller can read (tests, `beatstream dev`).
pub async fn run_with_metrics(
    config: Config,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<()> {
    config.options.validate()?;
    let source = RpcSource::connect(config.rpc_url.as_str(), config.options.rpc_timeout()).await?;
    run_with_source(config, source, metrics, shutdown).await
}

/// [`run`] reading the chain through `source` instead of the configured RPC (`config.rpc_url` is then unused):
/// the seam that lets tests put faults between the indexer and a real node.
pub async fn run_with_source<S: ChainSource + 'static>(
    config: Config,
    source: S,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<()> {
    let Config { database_url, options: config, .. } = config;
    config.validate()?;
    let deployment = Deployment::load(&config.deployment)?;
    let root = Root { node: namehash(&config.ens_root), name: config.ens_root.clone() };
    if root.node != deployment.root_node {
        return Err(Error::Config(format!(
            "--ens-root {} has namehash {}, but the deployment's root node is {}",
            config.ens_root, root.node, deployment.root_node
        )));
    }
    let rpc_chain = source.chain_id().await?;
    if rpc_chain != deployment.chain_id {
        return Err(Error::WrongChain { rpc: rpc_chain, deployment: deployment.chain_id });
    }
    let pool = beatstream_primitives::db::connect(&database_url).await?;
    beatstream_primitives::db::migrate(&pool).await?;

    let server = config.http.map(|addr| {
        let (metrics, shutdown) = (metrics.clone(), shutdown.clone());
        tokio::spawn(async move { server::serve(addr, metrics, shutdown).await })
    });
    info!(
        target: "beatstream::indexer",
        chain_id = deployment.chain_id,
        vault = %deployment.contracts.vault,
        from = deployment.deployment_block,
        "indexer starting"
    );
    let syncer = Syncer {
        source: Arc::new(source),
        pool,
        chain_id: deployment.chain_id as i64,
        root,
        sources: Sources {
            vault: deployment.contracts.vault,
            registry: deployment.contracts.registry,
            ens: deployment.contracts.ens_registry,
        },
        config: SyncConfig {
            start_block: deployment.deployment_block,
            confirmations: config.confirmations,
            reorg_window: config.reorg_window,
            concurrency: config.rpc_concurrency,
            batch_events: config.batch_events,
            poll_interval: config.poll_interval(),
        },
        ranges: Arc::new(RangeSize::new(config.range_initial, config.range_min, config.range_max)),
        metrics,
        known: Default::default(),
    };
    let result = syncer.run(shutdown.clone()).await;
    shutdown.cancel();
    if let Some(server) = server {
        server.await.map_err(|e| Error::Config(format!("health server task: {e}")))??;
    }
    result
}
