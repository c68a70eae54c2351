//! Rust and Solidity agree, on a real anvil with the real deployed contracts: grant ids, digests and the domain
//! separator computed in Rust equal what the vault computes, and a batch signed in Rust settles.

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, U256, keccak256},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionReceipt,
    signers::local::PrivateKeySigner,
    sol,
    sol_types::{Eip712Domain, SolStruct},
};
use beatstream_primitives::{
    Deployment, SessionGrant, VoucherDomain,
    contracts::{BeatStreamVault, MockUSDC, settle_batch_gas_limit},
    eip712::{self, SignatureBytes},
};
use beatstream_testkit::{Anvil, deploy};

const USDC: u64 = 1_000_000;

sol! {
    /// EIP-2612, to deposit with a permit signed in Rust.
    struct Permit { address owner; address spender; uint256 value; uint256 nonce; uint256 deadline; }
}

/// A deterministic stream of grants covering edge values (zero, max widths) and ordinary ones.
fn sample_grants() -> Vec<SessionGrant> {
    let mut grants = vec![
        SessionGrant {
            listener: Address::ZERO,
            sessionKey: Address::ZERO,
            cap: U256::ZERO,
            expiresAt: 0,
            nonce: 0,
        },
        SessionGrant {
            listener: Address::repeat_byte(0xff),
            sessionKey: Address::repeat_byte(0xee),
            cap: U256::MAX,
            expiresAt: u64::MAX,
            nonce: u64::MAX,
        },
    ];
    for i in 0u64..14 {
        let h = keccak256(i.to_be_bytes());
        grants.push(SessionGrant {
            listener: Address::from_slice(&h[..20]),
            sessionKey: Address::from_slice(&h[12..]),
            cap: U256::from_be_bytes(h.0) >> (i * 16),
            expiresAt: u64::from_be_bytes(h[..8].try_into().unwrap()),
            nonce: i,
        });
    }
    grants
}

#[tokio::test]
async fn rust_and_solidity_compute_the_same_hashes() -> eyre::Result<()> {
    let anvil = Anvil::spawn()?;
    let deployment = deploy(&anvil, &[]).await?;
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let vault = BeatStreamVault::new(deployment.contracts.vault, &provider);
    let domain = VoucherDomain::new(deployment.chain_id, deployment.contracts.vault);

    assert_eq!(vault.domainSeparator().call().await?, domain.separator(), "domain separator");
    for grant in sample_grants() {
        let onchain: BeatStreamVault::SessionGrant = grant.clone().into();
        assert_eq!(
            vault.grantId(onchain.clone()).call().await?,
            grant.id(),
            "grant id of {grant:?}"
        );
        assert_eq!(
            vault.grantDigest(onchain).call().await?,
            domain.grant_digest(&grant),
            "grant digest"
        );
        for (payee, cumulative) in [
            (Address::ZERO, U256::ZERO),
            (grant.sessionKey, grant.cap),
            (grant.listener, U256::MAX),
        ] {
            assert_eq!(
                vault.voucherDigest(grant.id(), payee, cumulative).call().await?,
                domain.voucher_digest(grant.id(), payee, cumulative),
                "voucher digest"
            );
        }
        for (payee, tip_id, amount, message) in [
            (
                grant.sessionKey,
                U256::from(1),
                U256::from(5_000_000),
                "thanks for the bridge ♥".as_bytes(),
            ),
            (Address::ZERO, U256::MAX, U256::MAX, b"".as_slice()),
            (grant.listener, U256::ZERO, U256::from(1), &[b'x'; 280][..]),
        ] {
            assert_eq!(
                vault
                    .tipDigest(
                        grant.id(),
                        payee,
                        tip_id,
                        amount,
                        alloy::primitives::keccak256(message)
                    )
                    .call()
                    .await?,
                domain.tip_digest(grant.id(), payee, tip_id, amount, message),
                "tip digest"
            );
        }
    }
    Ok(())
}

/// The smoke test: deposit with a permit, settle a Rust-signed batch, read the events; then a repeat settlement
/// without the grant signature next to a malleable (high-s) voucher, which is skipped without blocking the batch.
#[tokio::test]
async fn rust_signed_batch_settles_on_anvil() -> eyre::Result<()> {
    let anvil = Anvil::spawn()?;
    let deployment = deploy(&anvil, &[("BEATSTREAM_FEE_BPS", "250")]).await?;
    let keeper = anvil.signer(0);
    let listener = anvil.signer(1);
    let artist = anvil.addresses()[2];
    let session_key = PrivateKeySigner::random();
    let domain = VoucherDomain::new(deployment.chain_id, deployment.contracts.vault);

    // The listener deposits 10 USDC with a permit, no prior approval.
    let as_listener = ProviderBuilder::new()
        .wallet(EthereumWallet::from(listener.clone()))
        .connect_http(anvil.endpoint_url());
    let usdc = MockUSDC::new(deployment.contracts.usdc, &as_listener);
    usdc.mint(listener.address(), U256::from(10 * USDC)).send().await?.get_receipt().await?;
    let deadline = U256::from(u64::MAX);
    let permit = Permit {
        owner: listener.address(),
        spender: deployment.contracts.vault,
        value: U256::from(10 * USDC),
        nonce: usdc.nonces(listener.address()).call().await?,
        deadline,
    };
    let permit_domain = Eip712Domain::new(
        Some("Mock USD Coin".into()),
        Some("1".into()),
        Some(U256::from(deployment.chain_id)),
        Some(deployment.contracts.usdc),
        None,
    );
    assert_eq!(usdc.DOMAIN_SEPARATOR().call().await?, permit_domain.separator());
    let sig = eip712::sign(&listener, permit.eip712_signing_hash(&permit_domain))?;
    let vault_as_listener = BeatStreamVault::new(deployment.contracts.vault, &as_listener);
    let receipt = vault_as_listener
        .depositWithPermit(
            U256::from(10 * USDC),
            deadline,
            sig[64],
            B256::from_slice(&sig[..32]),
            B256::from_slice(&sig[32..64]),
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    let deposited = decode::<BeatStreamVault::Deposited>(&receipt);
    assert_eq!(deposited.len(), 1);
    assert_eq!(
        (deposited[0].listener, deposited[0].amount),
        (listener.address(), U256::from(10 * USDC))
    );

    // The player: one grant signed by the listener's wallet, vouchers by the session key.
    let now = provider_time(&anvil).await?;
    let grant = SessionGrant {
        listener: listener.address(),
        sessionKey: session_key.address(),
        cap: U256::from(5 * USDC),
        expiresAt: now + 3600,
        nonce: 1,
    };
    let grant_sig = domain.sign_grant(&listener, &grant)?;
    let first = U256::from(1_500_000u64);
    let voucher_sig = domain.sign_voucher(&session_key, grant.id(), artist, first)?;

    let as_keeper = ProviderBuilder::new()
        .wallet(EthereumWallet::from(keeper))
        .connect_http(anvil.endpoint_url());
    let vault = BeatStreamVault::new(deployment.contracts.vault, &as_keeper);
    let receipt = vault
        .settleBatch(vec![item(&grant, &grant_sig, artist, first, &voucher_sig)])
        .gas(settle_batch_gas_limit(1))
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(receipt.status(), "settleBatch reverted");
    let registered = decode::<BeatStreamVault::GrantRegistered>(&receipt);
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].grantId, grant.id());
    let settled = decode::<BeatStreamVault::Settled>(&receipt);
    assert_eq!(settled.len(), 1);
    let fee = first * U256::from(250) / U256::from(10_000);
    assert_eq!(
        (
            settled[0].grantId,
            settled[0].listener,
            settled[0].payee,
            settled[0].amount,
            settled[0].cumulative,
            settled[0].fee
        ),
        (grant.id(), listener.address(), artist, first, first, fee)
    );
    assert_eq!(vault.earningsOf(artist).call().await?, first - fee);
    assert_eq!(vault.settled(grant.id(), artist).call().await?, first);

    // Repeat: registered grant, no grant signature; plus the high-s twin of a fresh voucher, which must be skipped.
    let second = U256::from(2_000_000u64);
    let good = domain.sign_voucher(&session_key, grant.id(), artist, second)?;
    let twin = high_s_twin(&domain.sign_voucher(
        &session_key,
        grant.id(),
        anvil.addresses()[3],
        second,
    )?);
    let receipt = vault
        .settleBatch(vec![
            item(&grant, &[], anvil.addresses()[3], second, &twin),
            item(&grant, &[], artist, second, &good),
        ])
        .gas(settle_batch_gas_limit(2))
        .send()
        .await?
        .get_receipt()
        .await?;
    let skipped = decode::<BeatStreamVault::SettlementSkipped>(&receipt);
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].reason, 2, "InvalidVoucherSignature");
    let settled = decode::<BeatStreamVault::Settled>(&receipt);
    assert_eq!(settled.len(), 1);
    assert_eq!((settled[0].amount, settled[0].cumulative), (second - first, second));

    let account = vault.accountOf(listener.address()).call().await?;
    assert_eq!(account.available, U256::from(10 * USDC) - second);
    assert_eq!(vault.grantSpent(grant.id()).call().await?, second);
    Ok(())
}

/// The deployment file the script wrote describes what is on chain.
#[tokio::test]
async fn deploy_script_writes_a_usable_deployment_file() -> eyre::Result<()> {
    let anvil = Anvil::spawn()?;
    let d: Deployment = deploy(&anvil, &[("BEATSTREAM_WITHDRAWAL_DELAY", "600")]).await?;
    assert_eq!(d.chain_id, anvil.chain_id());
    assert_eq!(d.withdrawal_delay, 600);
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let vault = BeatStreamVault::new(d.contracts.vault, &provider);
    assert_eq!(vault.token().call().await?, d.contracts.usdc);
    assert_eq!(vault.withdrawalDelay().call().await?, 600);
    let ens =
        beatstream_primitives::contracts::ENSRegistry::new(d.contracts.ens_registry, &provider);
    assert_eq!(
        ens.owner(d.root_node).call().await?,
        d.contracts.registry,
        "registry owns beatstream.eth"
    );
    // A dev chain: anvil's ten accounts settle from the start; names are registered by commit and reveal a
    // second apart.
    for account in anvil.addresses() {
        assert!(vault.isSettler(*account).call().await?, "{account} is a settler on a dev chain");
    }
    assert!(!vault.isSettler(Address::repeat_byte(0x42)).call().await?);
    let registry =
        beatstream_primitives::contracts::BeatStreamRegistry::new(d.contracts.registry, &provider);
    assert_eq!(registry.MIN_COMMITMENT_AGE().call().await?, U256::from(1));
    Ok(())
}

/// On a public chain the script refuses to deploy while whoever holds the parent name's `.eth` registrar token
/// could reclaim it, unless told to go on, and then it warns; it requires the settlers to be named.
#[tokio::test]
async fn public_chain_deploy_refuses_a_reclaimable_parent_name() -> eyre::Result<()> {
    let anvil = Anvil::spawn()?;
    // A dev deployment provides an ENS registry and a USDC to deploy "onto", as on a public chain.
    let dev = deploy(&anvil, &[]).await?;
    let ens = dev.contracts.ens_registry.to_string();
    let usdc = dev.contracts.usdc.to_string();
    let keeper = anvil.addresses()[9].to_string();
    let public = [
        ("BEATSTREAM_DEV", "false"),
        ("BEATSTREAM_ENS_REGISTRY", ens.as_str()),
        ("BEATSTREAM_USDC", usdc.as_str()),
    ];

    let no_settlers = deploy(&anvil, &public).await.expect_err("settlers are required");
    assert!(no_settlers.to_string().contains("BEATSTREAM_SETTLERS"), "{no_settlers}");

    let with_settlers = [&public[..], &[("BEATSTREAM_SETTLERS", keeper.as_str())]].concat();
    let refused = deploy(&anvil, &with_settlers).await.expect_err("an unlocked parent is refused");
    assert!(refused.to_string().contains("BEATSTREAM_ENS_BASE_REGISTRAR is not set"), "{refused}");

    let allowed = [&with_settlers[..], &[("BEATSTREAM_ALLOW_RECLAIMABLE_ROOT", "true")]].concat();
    let d = deploy(&anvil, &allowed).await?;
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let vault = BeatStreamVault::new(d.contracts.vault, &provider);
    assert!(vault.isSettler(anvil.addresses()[9]).call().await?);
    assert!(!vault.isSettler(anvil.addresses()[0]).call().await?, "only the named settlers");
    let registry =
        beatstream_primitives::contracts::BeatStreamRegistry::new(d.contracts.registry, &provider);
    assert_eq!(registry.MIN_COMMITMENT_AGE().call().await?, U256::from(60), "ENS's own minimum");
    Ok(())
}

fn item(
    grant: &SessionGrant,
    grant_sig: &[u8],
    payee: Address,
    cumulative: U256,
    voucher_sig: &SignatureBytes,
) -> BeatStreamVault::SettlementItem {
    BeatStreamVault::SettlementItem {
        grant: grant.clone().into(),
        grantSignature: Bytes::copy_from_slice(grant_sig),
        payee,
        cumulative,
        voucherSignature: Bytes::copy_from_slice(voucher_sig),
    }
}

fn high_s_twin(sig: &SignatureBytes) -> SignatureBytes {
    let n = U256::from_str_radix(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        16,
    )
    .unwrap();
    let mut twin = *sig;
    let s = U256::from_be_slice(&sig[32..64]);
    twin[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    twin[64] = if sig[64] == 27 { 28 } else { 27 };
    twin
}

fn decode<E: alloy::sol_types::SolEvent>(receipt: &TransactionReceipt) -> Vec<E> {
    receipt
        .inner
        .logs()
        .iter()
        .filter_map(|log| log.log_decode::<E>().ok())
        .map(|l| l.inner.data)
        .collect()
}

async fn provider_time(anvil: &Anvil) -> eyre::Result<u64> {
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let block = provider.get_block_by_number(Default::default()).await?.expect("latest block");
    Ok(block.header.timestamp)
}
