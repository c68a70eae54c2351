//! v2 settles only from the vault's settlers: a keeper whose account is not one stops at start and says what to do.

use alloy::{primitives::U256, signers::local::PrivateKeySigner};
use beatstream_keeper::Error;
use serde_json::json;

use crate::harness::{Env, wait};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keeper_whose_account_is_not_a_settler_fails_at_start_saying_what_to_do()
-> eyre::Result<()> {
    let env = Env::new().await?;
    let key = PrivateKeySigner::random();
    let account = key.address();
    let vault = env.chain.deployment.contracts.vault;
    // Funded, so gas is not what stops it.
    env.rpc("anvil_setBalance", json!([account, U256::from(10u64).pow(U256::from(18u64))])).await?;
    let mut options = env.keeper_options();
    options.signer.private_key = Some(format!("0x{}", alloy::hex::encode(key.to_bytes())));

    let err =
        env.start_keeper(options.clone()).finished().await.expect_err("a non-settler started");
    assert!(matches!(err, Error::NotSettler { from: None, .. }), "{err:?}");
    let message = err.to_string();
    for needle in [account.to_string(), vault.to_string(), format!("setSettler({account}, true)")] {
        assert!(message.contains(&needle), "{needle:?} missing from: {message}");
    }
    assert!(message.contains("withdrawal delay"), "{message}");

    // The owner (the deployer, account 0) allows it: effective only after the delay (an hour here), and the error
    // says from when.
    let owner_vault = env.chain.vault(&env.signer(0));
    let r = owner_vault.setSettler(account, true).send().await?.get_receipt().await?;
    eyre::ensure!(r.status(), "setSettler reverted");
    let from = owner_vault.settlerFrom(account).call().await?.to::<u64>();
    let err = env.start_keeper(options.clone()).finished().await.expect_err("started early");
    assert!(matches!(err, Error::NotSettler { from: Some(f), .. } if f == from), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&from.to_string()) && message.contains(&account.to_string()),
        "{message}"
    );

    // Once the delay has passed it starts and leads.
    env.chain.warp(3_600).await?;
    let keeper = env.start_keeper(options);
    wait("the keeper to lead", 10, || async { Ok(keeper.metrics.leader.get() == 1) }).await?;
    keeper.stop().await?;
    env.stop().await
}
