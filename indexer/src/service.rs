//! The indexer service: checks the deployment against the chain, connects, serves health and metrics, and runs
//! the loop until shutdown.

use std::sync::Arc;

use beatstream_primitives::Deployment;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{
    ChainSource, Config, Error, Metrics, Result, RpcSource,
    db::Db,
    events::Sources,
    ranges::RangeSize,
    server::Probe,
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
    let source = RpcSource::connect(&config.rpc)?;
    run_with_source(config, source, metrics, shutdown).await
}

/// [`run`] reading the chain through `source` instead of the configured RPC (`config.rpc` is then unused):
/// the seam that lets tests put faults between the indexer and a real node.
pub async fn run_with_source<S: ChainSource + 'static>(
    config: Config,
    source: S,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<()> {
    let Config { database, options: config, .. } = config;
    config.validate()?;
    database.validate(false)?;
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
    let db = Db::connect(&database).await?;

    let source = Arc::new(source);
    let server = config.http.map(|addr| {
        let probe = Probe {
            metrics: metrics.clone(),
            db: db.clone(),
            source: source.clone(),
            chain_id: deployment.chain_id as i64,
            confirmations: config.confirmations,
            max_lag: config.ready_max_lag,
        };
        tokio::spawn(crate::server::serve(addr, probe, shutdown.clone()))
    });
    info!(
        target: "beatstream::indexer",
        chain_id = deployment.chain_id,
        vault = %deployment.contracts.vault,
        from = deployment.deployment_block,
        "indexer starting"
    );
    let syncer = Syncer {
        source,
        db,
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
