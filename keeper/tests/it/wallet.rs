//! Issue 14, scenario 3: a smart wallet that is cheap when the keeper simulates and burns its whole check allowance
//! when mined cannot sink the honest items of its batch, because the keeper budgets that allowance.

use alloy::{
    consensus::{Transaction, TxEnvelope},
    eips::eip2718::Decodable2718,
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolEvent},
};
use beatstream_primitives::{
    SessionGrant,
    contracts::BeatStreamVault::{self, BatchCutShort},
};
use beatstream_testkit::{
    scene::{Player, store_grant},
    workspace_root,
};
use serde_json::json;

use crate::harness::{Env, KEEPER, usdc, wait};

/// What the vault gives a wallet's `isValidSignature` (`ERC1271_GAS`).
const WALLET_CHECK_GAS: u64 = 150_000;

/// The simulation margin of the keeper's gas limit before v2: simulated + 25% + 20,000.
const fn v1_gas_limit(simulated: u64) -> u64 {
    simulated + simulated / 4 + 20_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_that_burns_its_gas_when_mined_does_not_sink_the_honest_items() -> eyre::Result<()>
{
    let env = Env::new().await?;
    let (a, b) = (env.signer(1).address(), env.signer(2).address());
    let l3 = env.listener(3, usdc(50)).await?;
    let l4 = env.listener(4, usdc(50)).await?;
    env.voucher(&l3, a, usdc(2)).await?;
    env.voucher(&l4, b, usdc(3)).await?;
    // The hostile listener: a TwoFacedWallet of account 5, funded, with a real grant signed by its owner. Its voucher
    // is the most valuable, so its item goes first and everything honest comes after it.
    let owner = env.signer(5);
    let wallet = deploy_two_faced_wallet(&env, &owner).await?;
    fund_wallet(&env, &owner, wallet, usdc(50)).await?;
    let hostile = wallet_player(&env, &owner, wallet).await?;
    store_grant(&env.pool, &env.chain, &hostile).await?;
    env.voucher(&hostile, a, usdc(10)).await?;
    env.indexed().await?;

    // Blocks only when the test says: the keeper simulates (the wallet honest) and broadcasts, and then the wallet
    // turns hostile before the block.
    env.automine(false).await?;
    let mut options = env.keeper_options();
    options.bump_after_secs = 3_600;
    let keeper = env.start_keeper(options);
    wait("the keeper to broadcast its batch", 30, || async {
        Ok(env.batches().await?.iter().any(|b| b.1 == "broadcast"))
    })
    .await?;
    assert_eq!(env.batches().await?, vec![(0, "broadcast".to_owned(), 3, 1)]);
    let raw: Vec<u8> =
        sqlx::query_scalar("SELECT raw FROM keeper_attempts").fetch_one(&env.pool).await?;
    let tx = TxEnvelope::decode_2718(&mut raw.as_slice())?;
    let items = BeatStreamVault::settleBatchCall::abi_decode(tx.input())?.items;
    assert_eq!(items[0].grant.listener, wallet, "the wallet's item is not first");
    // The gas limit holds the allowance of the one wallet check over the simulation's margin. Nothing was mined
    // since the keeper simulated, so this simulation sees what the keeper's saw.
    let simulated = simulate(&env, &tx).await?;
    let limit = tx.gas_limit();
    assert_eq!(limit, simulated + (simulated / 4 + 20_000).max(80_000) + WALLET_CHECK_GAS);

    // Slot 0 is `armed`: from now on the wallet burns all the gas its check is given.
    env.rpc("anvil_setStorageAt", json!([wallet, B256::ZERO, ARMED])).await?;
    // v1's limit (no allowance) would not have settled every honest item: the wallet still gets its check, burns
    // it, and the vault stops the batch before the last of them. The keeper's limit settles both.
    let v1 = settled_count(&env, &tx, v1_gas_limit(simulated)).await?;
    assert!(v1 < 2, "v1's gas limit settled both honest items");
    assert_eq!(settled_count(&env, &tx, limit).await?, 2);

    env.rpc("evm_mine", json!([])).await?;
    let receipt = env
        .chain
        .provider
        .get_transaction_receipt(*tx.tx_hash())
        .await?
        .ok_or_else(|| eyre::eyre!("the settlement was not mined"))?;
    assert!(receipt.status(), "the settlement reverted");
    let cut_short =
        receipt.inner.logs().iter().any(|l| BatchCutShort::decode_log(&l.inner).is_ok());
    assert!(!cut_short, "the vault cut the batch short");
    // The wallet burned its allowance in the block: the batch used more gas than simulated though it settled one
    // item less (and the item's skip below says its owner-signed grant failed the check).
    assert!(receipt.gas_used > simulated + WALLET_CHECK_GAS / 2, "{} gas", receipt.gas_used);

    // Every honest voucher settled; the wallet's did not.
    assert_eq!(env.settled(&l3, a).await?, usdc(2));
    assert_eq!(env.settled(&l4, b).await?, usdc(3));
    assert_eq!(env.settled(&hostile, a).await?, 0);
    wait("the batch to be confirmed", 10, || async {
        Ok(env.batches().await?.first().is_some_and(|b| b.1 == "confirmed"))
    })
    .await?;
    let outcome: String =
        sqlx::query_scalar("SELECT outcome FROM keeper_batch_items WHERE listener = $1")
            .bind(wallet.as_slice())
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(outcome, "skipped:invalid_grant_signature");

    keeper.stop().await?;
    env.automine(true).await?;
    env.stop().await
}

/// `armed = true` in the wallet's slot 0.
const ARMED: B256 = B256::with_last_byte(1);

/// Deploys `TwoFacedWallet(owner)` from forge's artifact.
async fn deploy_two_faced_wallet(env: &Env, owner: &PrivateKeySigner) -> eyre::Result<Address> {
    let path = workspace_root().join("out/SmartWallet.sol/TwoFacedWallet.json");
    let artifact: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let code = artifact["bytecode"]["object"]
        .as_str()
        .ok_or_else(|| eyre::eyre!("no bytecode in {}", path.display()))?
        .parse::<Bytes>()?;
    let mut init = code.to_vec();
    init.extend_from_slice(&owner.address().into_word().0);
    let tx = TransactionRequest::default().with_deploy_code(init);
    let receipt = env.chain.as_(owner).send_transaction(tx).await?.get_receipt().await?;
    receipt.contract_address.ok_or_else(|| eyre::eyre!("TwoFacedWallet was not deployed"))
}

/// Mints `amount` to the wallet's owner, who deposits it for the wallet.
async fn fund_wallet(
    env: &Env,
    owner: &PrivateKeySigner,
    wallet: Address,
    amount: u64,
) -> eyre::Result<()> {
    let usdc = env.chain.usdc(owner);
    usdc.mint(owner.address(), U256::from(amount)).send().await?.get_receipt().await?;
    usdc.approve(env.chain.deployment.contracts.vault, U256::from(amount))
        .send()
        .await?
        .get_receipt()
        .await?;
    let vault = env.chain.vault(owner);
    let r = vault.depositFor(wallet, U256::from(amount)).send().await?.get_receipt().await?;
    eyre::ensure!(r.status(), "depositFor reverted");
    Ok(())
}

/// A player under a grant of the wallet, signed by the wallet's owner (what its `isValidSignature` accepts).
async fn wallet_player(
    env: &Env,
    owner: &PrivateKeySigner,
    wallet: Address,
) -> eyre::Result<Player> {
    let key = PrivateKeySigner::random();
    let grant = SessionGrant {
        listener: wallet,
        sessionKey: key.address(),
        cap: U256::from(usdc(1_000)),
        expiresAt: env.chain.now().await? + 86_400,
        nonce: 1,
    };
    let grant_sig = env.chain.domain().sign_grant(owner, &grant)?;
    Ok(Player { key, grant, grant_sig })
}

/// Gas `tx`'s call uses on the latest state.
async fn simulate(env: &Env, tx: &TxEnvelope) -> eyre::Result<u64> {
    let keeper = env.signer(KEEPER).address();
    let result = env
        .rpc(
            "eth_simulateV1",
            json!([{
                "blockStateCalls": [{ "calls": [{ "from": keeper, "to": tx.to(), "data": tx.input() }] }],
                "validation": false,
            }, "latest"]),
        )
        .await?;
    let call = &result[0]["calls"][0];
    eyre::ensure!(call["status"] == "0x1", "simulation reverted: {call}");
    let gas = call["gasUsed"].as_str().ok_or_else(|| eyre::eyre!("no gasUsed: {call}"))?;
    Ok(u64::from_str_radix(gas.trim_start_matches("0x"), 16)?)
}

/// How many items `tx`'s call settles on the latest state, given `gas`.
async fn settled_count(env: &Env, tx: &TxEnvelope, gas: u64) -> eyre::Result<u64> {
    let keeper = env.signer(KEEPER).address();
    let call =
        json!({ "from": keeper, "to": tx.to(), "data": tx.input(), "gas": format!("{gas:#x}") });
    let out: Bytes = serde_json::from_value(env.rpc("eth_call", json!([call, "latest"])).await?)?;
    Ok(BeatStreamVault::settleBatchCall::abi_decode_returns(&out)?.to::<u64>())
}
