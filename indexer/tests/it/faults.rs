//! RPC errors, timeouts, "too many results", a lagging and flapping node, and an undecodable log: each is logged,
//! counted and retried; no block is skipped, nothing is mistaken for a reorg, and the result equals a fresh index.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use alloy::{primitives::Address, rpc::types::Log};
use beatstream_indexer::{BlockRef, ChainSource, Error, Metrics, Result, RpcSource};
use beatstream_testkit::TestDb;
use tokio_util::sync::CancellationToken;

use crate::harness::{
    Chain, Player, Running, USDC, assert_same, config, dump, fresh_index, settle,
};

/// A real node with faults in front of it.
struct Faulty {
    inner: RpcSource,
    calls: AtomicU64,
    corrupted_once: AtomicBool,
}

impl Faulty {
    /// A pseudo-random number in 0..100 per request (splitmix64 over a request counter): faults land on requests
    /// independently of the indexer's retry schedule, as a flaky node's do.
    fn roll(&self) -> u64 {
        let mut z = self.calls.fetch_add(1, Ordering::Relaxed).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % 100
    }
}

impl ChainSource for Faulty {
    async fn chain_id(&self) -> Result<u64> {
        self.inner.chain_id().await
    }

    async fn head(&self) -> Result<u64> {
        let roll = self.roll();
        let head = self.inner.head().await?;
        match roll {
            0..10 => Err(Error::Rpc("eth_blockNumber: connection reset by peer".into())),
            // A load balancer over a node three blocks behind: the head moves backwards.
            10..20 => Ok(head.saturating_sub(3)),
            _ => Ok(head),
        }
    }

    async fn header(&self, number: u64) -> Result<Option<BlockRef>> {
        match self.roll() {
            0..10 => Err(Error::Rpc("eth_getBlockByNumber: timed out after 10s".into())),
            // A lagging node that does not have the block yet.
            10..20 => Ok(None),
            _ => self.inner.header(number).await,
        }
    }

    async fn logs(&self, addresses: &[Address], from: u64, to: u64) -> Result<Vec<Log>> {
        let roll = self.roll();
        if to > from && roll < 30 {
            let mid = from + (to - from) / 2;
            return Err(Error::Rpc(format!(
                "query returned more than 10000 results. Try with this block range [{from:#x}, {mid:#x}]."
            )));
        }
        if (30..45).contains(&roll) {
            return Err(Error::Rpc("eth_getLogs: timed out after 10s".into()));
        }
        let mut logs = self.inner.logs(addresses, from, to).await?;
        // Once, a log of a known event whose data is cut short.
        if let Some(log) = logs.iter_mut().find(|l| !l.data().data.is_empty())
            && !self.corrupted_once.swap(true, Ordering::Relaxed)
        {
            let mut data = log.inner.data.clone();
            data.data = data.data.slice(..data.data.len() / 2);
            log.inner.data = data;
        }
        Ok(logs)
    }
}

/// A chain with one artist, `listeners` funded listeners, and `rounds` blocks each settling every listener's next
/// voucher.
async fn settling_chain(artist: &str, listeners: usize, rounds: u64) -> eyre::Result<Chain> {
    let chain = Chain::new().await?;
    let keeper = chain.anvil.signer(0);
    let payee = chain.anvil.signer(1);
    chain.register(&payee, artist, 10).await?;
    let mut players = Vec::new();
    for i in 2..2 + listeners {
        let listener = chain.anvil.signer(i);
        chain.fund(&listener, 20 * USDC).await?;
        players.push(Player::new(&chain, listener, 1).await?);
    }
    for round in 1..=rounds {
        let items = players
            .iter()
            .map(|p| p.item(&chain, payee.address(), round * 1000))
            .collect::<eyre::Result<_>>()?;
        settle(&chain, &keeper, items).await?;
    }
    Ok(chain)
}

#[tokio::test]
async fn faults_are_retried_without_skipping_or_false_reorgs() -> eyre::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let chain = settling_chain("faulty-artist", 4, 6).await?;
    let head = chain.head().await?;

    let db = TestDb::new().await?;
    let mut cfg = config(&chain, &db);
    cfg.options.range_initial = 8;
    let source = Faulty {
        inner: RpcSource::connect(&chain.anvil.endpoint_url().into())?,
        calls: AtomicU64::new(0),
        corrupted_once: AtomicBool::new(false),
    };
    let metrics = Metrics::new();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(beatstream_indexer::run_with_source(
        cfg,
        source,
        metrics.clone(),
        shutdown.clone(),
    ));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    while (metrics.indexed.get() as u64) < head {
        assert!(!task.is_finished(), "the indexer must not stop on transient faults");
        assert!(tokio::time::Instant::now() < deadline, "did not catch up through the faults");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    task.await??;

    assert!(metrics.rpc_errors.get() > 0, "faults were counted");
    assert!(metrics.decode_errors.get() >= 1, "the cut-short log was counted");
    assert_eq!(metrics.reorgs.get(), 0, "a lagging or flapping node is not a reorg");
    let fresh = fresh_index(&chain).await?;
    assert_same(&dump(&db).await?, &dump(&fresh).await?);
    Ok(())
}

/// Two indexers on one database (an operator's mistake) race for every batch; each batch commits only from where
/// it starts, so the losers' batches are rolled back and retried, and the result equals a single fresh index.
#[tokio::test]
async fn two_indexers_on_one_database_write_each_batch_once() -> eyre::Result<()> {
    let chain = settling_chain("twin-artist", 3, 5).await?;

    let db = TestDb::new().await?;
    let first = Running::start(config(&chain, &db));
    let second = Running::start(config(&chain, &db));
    first.catch_up(&chain).await?;
    second.catch_up(&chain).await?;
    first.stop().await?;
    second.stop().await?;
    let fresh = fresh_index(&chain).await?;
    assert_same(&dump(&db).await?, &dump(&fresh).await?);
    Ok(())
}
