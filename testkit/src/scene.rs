//! A chain with the real contracts: anvil, the forge deploy script, funded listeners, registered artists, and
//! players that sign real grants and vouchers. Shared by the indexer, keeper, API and end-to-end tests.

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use beatstream_primitives::{
    Deployment, SessionGrant, VoucherDomain,
    contracts::{BeatStreamRegistry, BeatStreamVault, MockUSDC},
};

use crate::{Anvil, deploy};

/// One USDC in base units.
pub const USDC: u64 = 1_000_000;

/// Anvil with the contracts deployed, and the deployment file on disk.
pub struct Chain {
    /// The running anvil.
    pub anvil: Anvil,
    /// What the deploy script wrote.
    pub deployment: Deployment,
    /// The same, as a file services can be pointed at.
    pub deployment_file: tempfile::NamedTempFile,
    /// A read-only provider.
    pub provider: DynProvider,
}

impl Chain {
    /// Anvil with a 2.5% fee and a 60 s withdrawal delay.
    pub async fn new() -> eyre::Result<Self> {
        Self::with(
            Anvil::spawn()?,
            &[("BEATSTREAM_FEE_BPS", "250"), ("BEATSTREAM_WITHDRAWAL_DELAY", "60")],
        )
        .await
    }

    /// Deploys to `anvil` with extra deploy-script `env` (fee, delays, ...).
    pub async fn with(anvil: Anvil, env: &[(&str, &str)]) -> eyre::Result<Self> {
        let deployment = deploy(&anvil, env).await?;
        let deployment_file = tempfile::NamedTempFile::new()?;
        std::fs::write(deployment_file.path(), serde_json::to_string(&deployment)?)?;
        let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url()).erased();
        Ok(Self { anvil, deployment, deployment_file, provider })
    }

    /// A provider that signs as `signer`.
    pub fn as_(&self, signer: &PrivateKeySigner) -> DynProvider {
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer.clone()))
            .connect_http(self.anvil.endpoint_url())
            .erased()
    }

    /// The vault, sending as `signer`.
    pub fn vault(
        &self,
        signer: &PrivateKeySigner,
    ) -> BeatStreamVault::BeatStreamVaultInstance<DynProvider> {
        BeatStreamVault::new(self.deployment.contracts.vault, self.as_(signer))
    }

    /// The registry, sending as `signer`.
    pub fn registry(
        &self,
        signer: &PrivateKeySigner,
    ) -> BeatStreamRegistry::BeatStreamRegistryInstance<DynProvider> {
        BeatStreamRegistry::new(self.deployment.contracts.registry, self.as_(signer))
    }

    /// The mock USDC, sending as `signer`.
    pub fn usdc(&self, signer: &PrivateKeySigner) -> MockUSDC::MockUSDCInstance<DynProvider> {
        MockUSDC::new(self.deployment.contracts.usdc, self.as_(signer))
    }

    /// The vault's EIP-712 domain.
    pub fn domain(&self) -> VoucherDomain {
        VoucherDomain::new(self.deployment.chain_id, self.deployment.contracts.vault)
    }

    /// Latest block number.
    pub async fn head(&self) -> eyre::Result<u64> {
        Ok(self.provider.get_block_number().await?)
    }

    /// Timestamp of the latest block.
    pub async fn now(&self) -> eyre::Result<u64> {
        let block =
            self.provider.get_block_by_number(Default::default()).await?.expect("latest block");
        Ok(block.header.timestamp)
    }

    /// Mines `blocks` empty blocks.
    pub async fn mine(&self, blocks: u64) -> eyre::Result<()> {
        let _: serde_json::Value =
            self.provider.raw_request("anvil_mine".into(), (U256::from(blocks),)).await?;
        Ok(())
    }

    /// Moves chain time forward and mines a block.
    pub async fn warp(&self, seconds: u64) -> eyre::Result<()> {
        let _: serde_json::Value =
            self.provider.raw_request("evm_increaseTime".into(), (U256::from(seconds),)).await?;
        self.mine(1).await
    }

    /// `evm_snapshot`.
    pub async fn snapshot(&self) -> eyre::Result<U256> {
        Ok(self.provider.raw_request("evm_snapshot".into(), ()).await?)
    }

    /// `evm_revert` to a snapshot (the blocks after it are gone: a reorg).
    pub async fn revert(&self, id: U256) -> eyre::Result<()> {
        let ok: bool = self.provider.raw_request("evm_revert".into(), (id,)).await?;
        eyre::ensure!(ok, "evm_revert failed");
        Ok(())
    }

    /// Mints and deposits `amount` for `listener`.
    pub async fn fund(&self, listener: &PrivateKeySigner, amount: u64) -> eyre::Result<()> {
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
    pub async fn register(
        &self,
        artist: &PrivateKeySigner,
        label: &str,
        rate: u64,
    ) -> eyre::Result<B256> {
        let registry = self.registry(artist);
        let records =
            vec![BeatStreamRegistry::TextRecord { key: "genre".into(), value: "ambient".into() }];
        Ok(beatstream_primitives::register_artist(
            &registry,
            artist.address(),
            label,
            U256::from(rate),
            records,
        )
        .await?)
    }
}

/// A listener's player: a grant and its session key.
pub struct Player {
    /// The session key that signs vouchers.
    pub key: PrivateKeySigner,
    /// The grant.
    pub grant: SessionGrant,
    /// The listener's signature of the grant.
    pub grant_sig: [u8; 65],
}

impl Player {
    /// A fresh session key under a 1,000 USDC grant of `listener`, valid for a day.
    pub async fn new(chain: &Chain, listener: PrivateKeySigner, nonce: u64) -> eyre::Result<Self> {
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

    /// A settlement item for `payee` at `cumulative`.
    pub fn item(
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
pub async fn settle(
    chain: &Chain,
    keeper: &PrivateKeySigner,
    items: Vec<BeatStreamVault::SettlementItem>,
) -> eyre::Result<()> {
    let gas = beatstream_primitives::contracts::settle_batch_gas_limit(items.len());
    let r = chain.vault(keeper).settleBatch(items).gas(gas).send().await?.get_receipt().await?;
    eyre::ensure!(r.status(), "settleBatch reverted");
    Ok(())
}

/// Stores `player`'s grant in the relay's `grants` table, as the relay does on `hello`.
pub async fn store_grant(pool: &sqlx::PgPool, chain: &Chain, player: &Player) -> eyre::Result<()> {
    let grant = &player.grant;
    sqlx::query(
        "INSERT INTO grants (grant_id, chain_id, vault, listener, session_key, cap, expires_at, nonce, signature)
         VALUES ($1, $2, $3, $4, $5, $6::numeric, to_timestamp($7::float8), $8::numeric, $9)",
    )
    .bind(grant.id().as_slice())
    .bind(chain.deployment.chain_id as i64)
    .bind(chain.deployment.contracts.vault.as_slice())
    .bind(grant.listener.as_slice())
    .bind(grant.sessionKey.as_slice())
    .bind(grant.cap.to_string())
    .bind(grant.expiresAt as f64)
    .bind(grant.nonce.to_string())
    .bind(player.grant_sig.as_slice())
    .execute(pool)
    .await?;
    Ok(())
}

/// Signs `player`'s voucher for `payee` at `cumulative` and stores it exactly as the relay's group commit does
/// (the newest per pair; a lower cumulative changes nothing).
pub async fn store_voucher(
    pool: &sqlx::PgPool,
    chain: &Chain,
    player: &Player,
    payee: Address,
    cumulative: u64,
) -> eyre::Result<()> {
    let id = player.grant.id();
    let sig = chain.domain().sign_voucher(&player.key, id, payee, U256::from(cumulative))?;
    sqlx::query(
        "INSERT INTO vouchers (grant_id, payee, listener, cumulative, signature)
         VALUES ($1, $2, $3, $4::numeric, $5)
         ON CONFLICT (grant_id, payee) DO UPDATE
            SET cumulative = EXCLUDED.cumulative, signature = EXCLUDED.signature, updated_at = now()
            WHERE vouchers.cumulative < EXCLUDED.cumulative",
    )
    .bind(id.as_slice())
    .bind(payee.as_slice())
    .bind(player.grant.listener.as_slice())
    .bind(cumulative.to_string())
    .bind(sig.as_slice())
    .execute(pool)
    .await?;
    Ok(())
}
