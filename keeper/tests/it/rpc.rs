//! The keeper on real-world RPC: through TLS with `--rpc-ca-file`, through rate limits and an overloaded first
//! endpoint, and on a node that does not serve `eth_simulateV1`, where it simulates with `eth_call` and holds
//! exactly the vouchers the vault would skip, with the same reasons.

use std::time::Duration;

use beatstream_primitives::rpc::RpcArgs;
use beatstream_testkit::{
    postgres::TestCerts,
    rpc_proxy::{Fault, FaultProxy, TlsProxy},
};

use crate::harness::{Env, usdc, wait};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settles_through_https_trusting_the_ca_file() -> eyre::Result<()> {
    let env = Env::new().await?;
    let a = env.signer(1).address();
    let listener = env.listener(3, usdc(10)).await?;
    env.voucher(&listener, a, usdc(2)).await?;
    env.indexed().await?;
    let certs = TestCerts::generate()?;
    let tls = TlsProxy::start(&env.chain.anvil.endpoint_url(), &certs).await?;

    let rpc = RpcArgs { rpc_ca_file: Some(certs.ca()), ..tls.https_url().into() };
    let keeper = env.start_keeper_on(rpc, env.keeper_options());
    env.wait_settled(&listener, a, usdc(2), 30).await?;
    wait("the batch to be confirmed", 10, || async {
        Ok(env.batches().await?.iter().any(|b| b.1 == "confirmed"))
    })
    .await?;
    keeper.stop().await?;
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settles_through_rate_limits_and_an_overloaded_first_endpoint() -> eyre::Result<()> {
    let env = Env::new().await?;
    let a = env.signer(1).address();
    let listener = env.listener(3, usdc(10)).await?;
    env.voucher(&listener, a, usdc(2)).await?;
    env.indexed().await?;
    // The first endpoint answers 503 to everything; the second 429 (`Retry-After: 1`) to its first six requests.
    let anvil = env.chain.anvil.endpoint_url();
    let overloaded = FaultProxy::start(anvil.clone()).await?;
    overloaded.fail_next(usize::MAX, Fault::Unavailable);
    let limited = FaultProxy::start(anvil).await?;
    limited.fail_next(6, Fault::TooManyRequests { retry_after: "1".into() });

    let keeper =
        env.start_keeper_on(RpcArgs::new([overloaded.url(), limited.url()]), env.keeper_options());
    env.wait_settled(&listener, a, usdc(2), 60).await?;
    let too_many = |f: &Fault| matches!(f, Fault::TooManyRequests { .. });
    limited.wait_retried(too_many, 6, Duration::from_secs(1)).await?;
    assert!(!overloaded.seen().is_empty(), "the first endpoint was never tried");
    wait("the batch to be confirmed", 10, || async {
        Ok(env.batches().await?.iter().any(|b| b.1 == "confirmed"))
    })
    .await?;
    assert_eq!(env.batches().await?, vec![(0, "confirmed".to_owned(), 1, 1)]);
    keeper.stop().await?;
    env.stop().await
}

/// Mirrors `batching::a_voucher_the_vault_would_skip_is_held_without_blocking_the_rest` and
/// `batching::a_revoked_grant_is_held_for_good_newer_vouchers_included` on a node without `eth_simulateV1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_eth_simulate_v1_the_vouchers_the_vault_would_skip_are_held_and_the_rest_settle()
-> eyre::Result<()> {
    let env = Env::new().await?;
    let (a, b) = (env.signer(1).address(), env.signer(2).address());
    // Listener 3 promises artist A 8 USDC under one grant...
    let drained = env.listener(3, usdc(10)).await?;
    env.voucher(&drained, a, usdc(8)).await?;
    // ...but artist B settles 9 USDC of another grant first, on its own: 1 USDC is left.
    let other = env.player(3, 2).await?;
    let item = other.item(&env.chain, b, usdc(9))?;
    let r = env
        .chain
        .vault(&env.signer(2))
        .settleBatch(vec![item])
        .gas(1_000_000)
        .send()
        .await?
        .get_receipt()
        .await?;
    eyre::ensure!(r.status(), "artist's own settlement reverted");
    // Listener 5 revokes its grant; on-chain it takes effect after the delay (an hour here).
    let revoked = env.listener(5, usdc(50)).await?;
    env.voucher(&revoked, a, usdc(2)).await?;
    let r = env
        .chain
        .vault(&env.signer(5))
        .revokeGrant(revoked.grant.id())
        .send()
        .await?
        .get_receipt()
        .await?;
    eyre::ensure!(r.status(), "revokeGrant reverted");
    env.chain.warp(3_600).await?;
    // Listener 4 is fine, and pays two artists under one grant (the second item finds it registered by the first).
    let fine = env.listener(4, usdc(10)).await?;
    env.voucher(&fine, a, usdc(3)).await?;
    env.voucher(&fine, b, usdc(1)).await?;
    env.indexed().await?;

    let proxy = FaultProxy::start(env.chain.anvil.endpoint_url()).await?;
    proxy.without_method("eth_simulateV1");
    let keeper = env.start_keeper_on(proxy.url().into(), env.keeper_options());
    env.wait_settled(&fine, a, usdc(3), 30).await?;
    env.wait_settled(&fine, b, usdc(1), 30).await?;
    wait("the batch to be confirmed", 10, || async {
        Ok(env.batches().await?.iter().any(|b| b.1 == "confirmed"))
    })
    .await?;
    // The doomed vouchers never went into a transaction, and wait with the reasons eth_simulateV1 gives.
    assert_eq!(env.batches().await?, vec![(0, "confirmed".to_owned(), 2, 1)]);
    assert_eq!(env.settled(&drained, a).await?, 0);
    let pool = &env.pool;
    let reason = |grant: alloy::primitives::B256| async move {
        let reason: String =
            sqlx::query_scalar("SELECT reason FROM keeper_holds WHERE grant_id = $1")
                .bind(grant.as_slice())
                .fetch_one(pool)
                .await?;
        eyre::Ok(reason)
    };
    assert_eq!(reason(drained.grant.id()).await?, "insufficient_funds");
    assert_eq!(reason(revoked.grant.id()).await?, "grant_revoked");
    // Asked once: the answer is remembered, every simulation since went through eth_call.
    let seen = proxy.seen();
    assert_eq!(seen.iter().filter(|s| s.method == "eth_simulateV1").count(), 1);
    assert!(seen.iter().any(|s| s.method == "eth_call"));

    // Once the listener tops up and plays on, the newer voucher lifts the hold and settles.
    env.chain.fund(&env.signer(3), usdc(10)).await?;
    env.voucher(&drained, a, usdc(9)).await?;
    env.wait_settled(&drained, a, usdc(9), 30).await?;
    assert_eq!(proxy.seen().iter().filter(|s| s.method == "eth_simulateV1").count(), 1);
    keeper.stop().await?;
    env.stop().await
}
