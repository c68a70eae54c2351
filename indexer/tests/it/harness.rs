//! A chain with the real contracts, a database, and the real indexer running against both.

use std::time::Duration;

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use beatstream_indexer::{Config, Metrics, Options};
use beatstream_primitives::{
    Deployment, SessionGrant, VoucherDomain,
    contracts::{BeatStreamRegistry, BeatStreamVault, MockUSDC},
};
use beatstream_testkit::{Anvil, TestDb, deploy};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub(crate) const USDC: u64 = 1_000_000;

/// Anvil with the contracts deployed, and the deployment file on disk.
pub(crate) struct Chain {
    pub(crate) anvil: Anvil,
    pub(crate) deployment: Deployment,
    pub(crate) deployment_file: tempfile::NamedTempFile,
    pub(crate) provider: DynProvider,
}

impl Chain {
    pub(crate) async fn new() -> eyre::Result<Self> {
        let anvil = Anvil::spawn()?;
        let deployment =
            deploy(&anvil, &[("BEATSTREAM_FEE_BPS", "250"), ("BEATSTREAM_WITHDRAWAL_DELAY", "60")])
                .await?;
        let deployment_file = tempfile::NamedTempFile::new()?;
        std::fs::write(deployment_file.path(), serde_json::to_string(&deployment)?)?;
        let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url()).erased();
        Ok(Self { anvil, deployment, deployment_file, provider })
    }

    /// A provider that signs as `signer`.
    pub(crate) fn as_(&self, signer: &PrivateKeySigner) -> DynProvider {
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer.clone()))
            .connect_http(self.anvil.endpoint_url())
            .erased()
    }

    pub(crate) fn vault(
        &self,
        signer: &PrivateKeySigner,
    ) -> BeatStreamVault::BeatStreamVaultInstance<DynProvider> {
        BeatStreamVault::new(self.deployment.contracts.vault, self.as_(signer))
    }

    pub(crate) fn registry(
        &self,
        signer: &PrivateKeySigner,
    ) -> BeatStreamRegistry::BeatStreamRegistryInstance<DynProvider> {
        BeatStreamRegistry::new(self.deployment.contracts.registry, self.as_(signer))
    }

    pub(crate) fn usdc(
        &self,
        signer: &PrivateKeySigner,
    ) -> MockUSDC::MockUSDCInstance<DynProvider> {
        MockUSDC::new(self.deployment.contracts.usdc, self.as_(signer))
    }

    pub(crate) fn domain(&self) -> VoucherDomain {
        VoucherDomain::new(self.deployment.chain_id, self.deployment.contracts.vault)
    }

    pub(crate) async fn head(&self) -> eyre::Result<u64> {
        Ok(self.provider.get_block_number().await?)
    }

    pub(crate) async fn now(&self) -> eyre::Result<u64> {
        let block =
            self.provider.get_block_by_number(Default::default()).await?.expect("latest block");
        Ok(block.header.timestamp)
    }

    pub(crate) async fn mine(&self, blocks: u64) -> eyre::Result<()> {
        let _: serde_json::Value =
            self.provider.raw_request("anvil_mine".into(), (U256::from(blocks),)).await?;
        Ok(())
    }

    pub(crate) async fn warp(&self, seconds: u64) -> eyre::Result<()> {
        let _: serde_json::Value =
            self.provider.raw_request("evm_increaseTime".into(), (U256::from(seconds),)).await?;
        self.mine(1).await
    }

    pub(crate) async fn snapshot(&self) -> eyre::Result<U256> {
        Ok(self.provider.raw_request("evm_snapshot".into(), ()).await?)
    }

    pub(crate) async fn revert(&self, id: U256) -> eyre::Result<()> {
        let ok: bool = self.provider.raw_request("evm_revert".into(), (id,)).await?;
        eyre::ensure!(ok, "evm_revert failed");
        Ok(())
    }

    /// Mints and deposits `amount` for `listener`.
    pub(crate) async fn fund(&self, listener: &PrivateKeySigner, amount: u64) -> eyre::Result<()> {
        let usdc = self.usdc(listener);
        usdc.mint(listener.address(), U256::from(amount)).send().await?.get_receipt().await?;
        usdc.approve(self.deployment.contracts.vault, U256::from(amount))
            .send()
            .await?
            .get_receipt()
            .await?;
        let r =
            self.vault(listener).deposit(U256::from(amount)).send().await?.get_receipt().await?;
        eyre::ensure!(r.status(), "deposit reverted");
        Ok(())
    }

    /// Registers `label` for `artist` with one text record; returns the node.
    pub(crate) async fn register(
        &self,
        artist: &PrivateKeySigner,
        label: &str,
        rate: u64,
    ) -> eyre::Result<B256> {
        let registry = self.registry(artist);
        let records =
            vec![BeatStreamRegistry::TextRecord { key: "genre".into(), value: "ambient".into() }];
        let node =
            registry.registerArtist(label.into(), U256::from(rate), records.clone()).call().await?;
        let r = registry
            .registerArtist(label.into(), U256::from(rate), records)
            .send()
            .await?
            .get_receipt()
            .await?;
        eyre::ensure!(r.status(), "registerArtist reverted");
        Ok(node)
    }
}

/// A listener's player: a grant and its session key.
pub(crate) struct Player {
    pub(crate) key: PrivateKeySigner,
    pub(crate) grant: SessionGrant,
    pub(crate) grant_sig: [u8; 65],
}

impl Player {
    pub(crate) async fn new(
        chain: &Chain,
        listener: PrivateKeySigner,
        nonce: u64,
    ) -> eyre::Result<Self> {
        let key = PrivateKeySigner::random();
        let grant = SessionGrant {
            listener: listener.address(),
            sessionKey: key.address(),
            cap: U256::from(1_000 * USDC),
            expiresAt: chain.now().await? + 86_400,
            nonce,
        };
        let grant_sig = chain.domain().sign_grant(&listener, &grant)?;
        Ok(Self { key, grant, grant_sig })
    }

    pub(crate) fn item(
        &self,
        chain: &Chain,
        payee: Address,
        cumulative: u64,
    ) -> eyre::Result<BeatStreamVault::SettlementItem> {
        let sig = chain.domain().sign_voucher(
            &self.key,
            self.grant.id(),
            payee,
            U256::from(cumulative),
        )?;
        Ok(BeatStreamVault::SettlementItem {
            grant: self.grant.clone().into(),
            grantSignature: Bytes::copy_from_slice(&self.grant_sig),
            payee,
            cumulative: U256::from(cumulative),
            voucherSignature: Bytes::copy_from_slice(&sig),
        })
    }
}

/// Settles `items` as `keeper`.
pub(crate) async fn settle(
    chain: &Chain,
    keeper: &PrivateKeySigner,
    items: Vec<BeatStreamVault::SettlementItem>,
) -> eyre::Result<()> {
    let r = chain.vault(keeper).settleBatch(items).send().await?.get_receipt().await?;
    eyre::ensure!(r.status(), "settleBatch reverted");
    Ok(())
}

/// The real indexer, running in this process against `chain` and `db`.
pub(crate) struct Running {
    pub(crate) metrics: Metrics,
    shutdown: CancellationToken,
    handle: JoinHandle<beatstream_indexer::Result<()>>,
}

pub(crate) fn config(chain: &Chain, db: &TestDb) -> Config {
    Config {
        database_url: db.url().to_owned(),
        rpc_url: chain.anvil.endpoint_url(),
        options: Options {
            deployment: chain.deployment_file.path().to_owned(),
            ens_root: "beatstream.eth".into(),
            confirmations: 0,
            reorg_window: 64,
            range_initial: 100,
            range_min: 1,
            range_max: 10_000,
            rpc_concurrency: 2,
            rpc_timeout_secs: 10,
            poll_interval_ms: 50,
            http: None,
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
