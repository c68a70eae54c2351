//! A chain with the real contracts, a database, and the real indexer running against both.

use std::time::Duration;

use beatstream_indexer::{Config, Metrics, Options};
use beatstream_testkit::TestDb;
pub(crate) use beatstream_testkit::scene::{Chain, Player, USDC, settle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The real indexer, running in this process against `chain` and `db`.
pub(crate) struct Running {
    pub(crate) metrics: Metrics,
    shutdown: CancellationToken,
    handle: JoinHandle<beatstream_indexer::Result<()>>,
}

pub(crate) fn config(chain: &Chain, db: &TestDb) -> Config {
    Config {
        database: beatstream_primitives::db::DatabaseArgs::new(db.url().to_owned()),
        rpc: beatstream_primitives::rpc::RpcArgs {
            rpc_timeout_secs: 10,
            ..chain.anvil.endpoint_url().into()
        },
        options: Options {
            deployment: chain.deployment_file.path().to_owned(),
            ens_root: "beatstream.eth".into(),
            confirmations: 0,
            reorg_window: 64,
            // Small ranges and batches: a backfill is several batches, written two at a time (staged and finished).
            range_initial: 2,
            range_min: 1,
            range_max: 8,
            batch_events: 3,
            rpc_concurrency: 2,
            poll_interval_ms: 50,
            http: None,
            ready_max_lag: beatstream_indexer::DEFAULT_READY_MAX_LAG,
        },
    }
}

impl Running {
    pub(crate) fn start(config: Config) -> Self {
        let metrics = Metrics::new();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(beatstream_indexer::run_with_metrics(
            config,
            metrics.clone(),
            shutdown.clone(),
        ));
        Self { metrics, shutdown, handle }
    }

    /// Waits until the indexer has written `block`.
    pub(crate) async fn wait_for(&self, block: u64) -> eyre::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while (self.metrics.indexed.get() as u64) < block || self.metrics.indexed.get() < 0 {
            eyre::ensure!(!self.handle.is_finished(), "indexer stopped");
            eyre::ensure!(
                tokio::time::Instant::now() < deadline,
                "indexer did not reach block {block} (at {}, last error: {:?})",
                self.metrics.indexed.get(),
                self.metrics.last_error()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Waits until the indexer has written the chain's current head.
    pub(crate) async fn catch_up(&self, chain: &Chain) -> eyre::Result<()> {
        self.wait_for(chain.head().await?).await
    }

    /// Waits for the indexer to stop by itself and returns how it ended.
    pub(crate) async fn finish(self) -> beatstream_indexer::Result<()> {
        tokio::time::timeout(Duration::from_secs(60), self.handle)
            .await
            .expect("indexer did not stop within 60 s")
            .expect("indexer task panicked")
    }

    pub(crate) async fn stop(self) -> eyre::Result<()> {
        self.shutdown.cancel();
        self.handle.await??;
        Ok(())
    }
}

/// Indexes `chain` from scratch into a new database, up to its head.
pub(crate) use beatstream_testkit::mirror::{assert_same, dump};

pub(crate) async fn fresh_index(chain: &Chain) -> eyre::Result<TestDb> {
    let db = TestDb::new().await?;
    let indexer = Running::start(config(chain, &db));
    indexer.catch_up(chain).await?;
    indexer.stop().await?;
    Ok(db)
}
