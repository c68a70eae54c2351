//! A chain with the real contracts, a database the real indexer keeps current, vouchers stored exactly as the relay
//! stores them (real keys, real signatures), and keepers running in this process.

use std::{sync::Arc, time::Duration};

use alloy::{
    primitives::{Address, B256},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use beatstream_keeper::{Config, Metrics, Options, SignerArgs};
use beatstream_testkit::{
    Anvil, TestDb,
    scene::{Chain, Player, USDC, store_grant, store_voucher},
};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Anvil account the keepers sign with.
pub(crate) const KEEPER: usize = 7;

/// Everything a keeper test needs.
pub(crate) struct Env {
    pub(crate) chain: Chain,
    pub(crate) db: Arc<TestDb>,
    pub(crate) pool: PgPool,
    indexer_stop: CancellationToken,
    indexer: JoinHandle<beatstream_indexer::Result<()>>,
    indexer_metrics: beatstream_indexer::Metrics,
}

impl Env {
    /// Anvil (withdrawal delay one hour), the contracts, a database and the indexer following the chain.
    pub(crate) async fn new() -> eyre::Result<Self> {
        Self::with_anvil(Anvil::spawn()?).await
    }

    pub(crate) async fn with_anvil(anvil: Anvil) -> eyre::Result<Self> {
        Self::on(anvil, Arc::new(TestDb::new().await?)).await
    }

    /// Another chain (an `anvil` with its own chain id) and its indexer on this environment's database.
    pub(crate) async fn beside(&self, anvil: Anvil) -> eyre::Result<Self> {
        Self::on(anvil, self.db.clone()).await
    }

    async fn on(anvil: Anvil, db: Arc<TestDb>) -> eyre::Result<Self> {
        // Another chain id than anvil's is a dev chain too (anvil's accounts are the settlers).
        let chain = Chain::with(
            anvil,
            &[
                ("BEATSTREAM_FEE_BPS", "250"),
                ("BEATSTREAM_WITHDRAWAL_DELAY", "3600"),
                ("BEATSTREAM_DEV", "true"),
            ],
        )
        .await?;
        let pool = PgPool::connect(db.url()).await?;
        let indexer_metrics = beatstream_indexer::Metrics::new();
        let indexer_stop = CancellationToken::new();
        let config = beatstream_indexer::Config {
            database: beatstream_primitives::db::DatabaseArgs::new(db.url().to_owned()),
            rpc: beatstream_primitives::rpc::RpcArgs {
                rpc_timeout_secs: 10,
                ..chain.anvil.endpoint_url().into()
            },
            options: beatstream_indexer::Options {
                reorg_window: 64,
                range_max: 10_000,
                poll_interval_ms: 50,
                ..beatstream_indexer::Options::new(chain.deployment_file.path().to_owned())
            },
        };
        let indexer = tokio::spawn(beatstream_indexer::run_with_metrics(
            config,
            indexer_metrics.clone(),
            indexer_stop.clone(),
        ));
        let env = Self { chain, db, pool, indexer_stop, indexer, indexer_metrics };
        env.indexed().await?;
        Ok(env)
    }

    /// Waits until the indexer has reached the chain's head.
    pub(crate) async fn indexed(&self) -> eyre::Result<()> {
        let head = self.chain.head().await? as i64;
        wait("the indexer to reach the head", 60, || async {
            eyre::ensure!(!self.indexer.is_finished(), "indexer stopped");
            Ok(self.indexer_metrics.indexed.get() >= head)
        })
        .await
    }

    pub(crate) fn signer(&self, index: usize) -> PrivateKeySigner {
        self.chain.anvil.signer(index)
    }

    /// Keeper settings for tests: fast polls, settle anything at once, anvil's instant blocks.
    pub(crate) fn keeper_options(&self) -> Options {
        Options {
            signer: SignerArgs {
                private_key: Some(self.chain.anvil.private_key_hex(KEEPER)),
                ..Default::default()
            },
            payee_threshold: 1,
            book_threshold: 1,
            min_item_value: 1,
            confirmations: 0,
            poll_ms: 100,
            lease_secs: 2,
            bump_after_secs: 1,
            ..Default::default()
        }
    }

    pub(crate) fn start_keeper(&self, options: Options) -> Keeper {
        self.start_keeper_on(self.chain.anvil.endpoint_url().into(), options)
    }

    /// A keeper reaching the chain through `rpc` (a proxy in front of this environment's anvil).
    pub(crate) fn start_keeper_on(
        &self,
        rpc: beatstream_primitives::rpc::RpcArgs,
        options: Options,
    ) -> Keeper {
        let config = Config {
            database: beatstream_primitives::db::DatabaseArgs::new(self.db.url().to_owned()),
            rpc,
            deployment: self.chain.deployment_file.path().to_owned(),
            options,
        };
        let metrics = Metrics::new();
        let stop = CancellationToken::new();
        let task = tokio::spawn(beatstream_keeper::run_with_metrics(
            config,
            metrics.clone(),
            stop.clone(),
        ));
        Keeper { metrics, stop, task }
    }

    /// A listener (an anvil account) with `amount` deposited, and a player under a fresh grant.
    pub(crate) async fn listener(&self, index: usize, amount: u64) -> eyre::Result<Player> {
        let wallet = self.signer(index);
        self.chain.fund(&wallet, amount).await?;
        self.player(index, 1).await
    }

    /// Another grant of listener `index`.
    pub(crate) async fn player(&self, index: usize, nonce: u64) -> eyre::Result<Player> {
        let player = Player::new(&self.chain, self.signer(index), nonce).await?;
        store_grant(&self.pool, &self.chain, &player).await?;
        Ok(player)
    }

    /// Stores a voucher exactly as the relay's group commit does.
    pub(crate) async fn voucher(
        &self,
        player: &Player,
        payee: Address,
        cumulative: u64,
    ) -> eyre::Result<()> {
        store_voucher(&self.pool, &self.chain, player, payee, cumulative).await
    }

    /// The vault's settled cumulative of a pair.
    pub(crate) async fn settled(&self, player: &Player, payee: Address) -> eyre::Result<u64> {
        let vault = self.chain.vault(&self.signer(0));
        Ok(vault.settled(player.grant.id(), payee).call().await?.to::<u64>())
    }

    /// Waits until the vault has settled `cumulative` for the pair.
    pub(crate) async fn wait_settled(
        &self,
        player: &Player,
        payee: Address,
        cumulative: u64,
        secs: u64,
    ) -> eyre::Result<()> {
        wait(&format!("{payee} to be settled to {cumulative}"), secs, || async {
            Ok(self.settled(player, payee).await? >= cumulative)
        })
        .await
    }

    /// `Settled` events of the vault for (grant, payee), over the whole chain.
    pub(crate) async fn settled_events(&self, grant: B256, payee: Address) -> eyre::Result<usize> {
        use alloy::{rpc::types::Filter, sol_types::SolEvent};
        use beatstream_primitives::contracts::BeatStreamVault::Settled;
        let filter = Filter::new()
            .address(self.chain.deployment.contracts.vault)
            .event_signature(Settled::SIGNATURE_HASH)
            .topic1(grant)
            .from_block(0);
        let logs = self.chain.provider.get_logs(&filter).await?;
        Ok(logs
            .iter()
            .filter(|l| Settled::decode_log(&l.inner).map(|e| e.payee == payee).unwrap_or(false))
            .count())
    }

    /// Status of every batch, oldest first: (nonce, status, items, attempts).
    pub(crate) async fn batches(&self) -> eyre::Result<Vec<(i64, String, i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT b.nonce, b.status,
                    (SELECT count(*) FROM keeper_batch_items i WHERE i.batch_id = b.id),
                    (SELECT count(*) FROM keeper_attempts a WHERE a.batch_id = b.id)
             FROM keeper_batches b ORDER BY b.id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub(crate) async fn rpc(
        &self,
        method: &'static str,
        params: serde_json::Value,
    ) -> eyre::Result<serde_json::Value> {
        Ok(self.chain.provider.raw_request(method.into(), params).await?)
    }

    pub(crate) async fn automine(&self, on: bool) -> eyre::Result<()> {
        self.rpc("evm_setAutomine", serde_json::json!([on])).await?;
        Ok(())
    }

    pub(crate) async fn stop(self) -> eyre::Result<()> {
        self.indexer_stop.cancel();
        self.indexer.await??;
        Ok(())
    }
}

/// A keeper running in this process.
pub(crate) struct Keeper {
    pub(crate) metrics: Metrics,
    pub(crate) stop: CancellationToken,
    pub(crate) task: JoinHandle<beatstream_keeper::Result<()>>,
}

impl Keeper {
    pub(crate) async fn stop(self) -> eyre::Result<()> {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task).await???;
        Ok(())
    }

    /// Waits for the keeper to end by itself (a fail point) and returns how it ended.
    pub(crate) async fn finished(self) -> beatstream_keeper::Result<()> {
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("keeper did not stop within 30 s")
            .expect("keeper task panicked")
    }
}

/// Polls `check` every 50 ms until it holds, failing after `secs`.
pub(crate) async fn wait<F, Fut>(what: &str, secs: u64, mut check: F) -> eyre::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = eyre::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if check().await? {
            return Ok(());
        }
        eyre::ensure!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) const fn usdc(n: u64) -> u64 {
    n * USDC
}
