//! Normal batching end to end, urgent settlement on a withdrawal request, and vouchers the vault would skip.

use alloy::{
    consensus::{Transaction, TxEnvelope},
    eips::eip2718::Decodable2718,
    primitives::U256,
    sol_types::SolCall,
};
use beatstream_primitives::contracts::BeatStreamVault;

use crate::harness::{Env, usdc, wait};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settles_the_book_in_one_batch_then_only_what_grew() -> eyre::Result<()> {
    let env = Env::new().await?;
    let (a, b) = (env.signer(1).address(), env.signer(2).address());
    let l3 = env.listener(3, usdc(100)).await?;
    let l4 = env.listener(4, usdc(100)).await?;
    let l5 = env.listener(5, usdc(100)).await?;
    env.voucher(&l3, a, usdc(1)).await?;
    env.voucher(&l3, b, usdc(2)).await?;
    env.voucher(&l4, a, usdc(3)).await?;
    env.voucher(&l5, b, usdc(1) / 2).await?;
    env.indexed().await?;

    let keeper = env.start_keeper(env.keeper_options());
    env.wait_settled(&l5, b, usdc(1) / 2, 30).await?;
    for (p, payee, c) in [(&l3, a, usdc(1)), (&l3, b, usdc(2)), (&l4, a, usdc(3))] {
        assert_eq!(env.settled(p, payee).await?, c);
    }
    // One transaction for the four vouchers.
    wait("the batch to be confirmed", 10, || async {
        Ok(env.batches().await?.iter().any(|b| b.1 == "confirmed"))
    })
    .await?;
    assert_eq!(env.batches().await?, vec![(0, "confirmed".to_owned(), 4, 1)]);
    // Artist A earned 4 USDC minus the 2.5% fee.
    let vault = env.chain.vault(&env.signer(0));
    assert_eq!(vault.earningsOf(a).call().await?, U256::from(usdc(4) * 975 / 1000));

    // The listener plays on: only the grown voucher is settled, without its (now registered) grant's signature.
    env.indexed().await?;
    env.voucher(&l3, a, usdc(3) / 2).await?;
    env.wait_settled(&l3, a, usdc(3) / 2, 30).await?;
    wait("the second batch to be confirmed", 10, || async {
        Ok(env.batches().await?.iter().filter(|b| b.1 == "confirmed").count() == 2)
    })
    .await?;
    let batches = env.batches().await?;
    assert_eq!(batches[1], (1, "confirmed".to_owned(), 1, 1));
    let raw: Vec<u8> = sqlx::query_scalar(
        "SELECT a.raw FROM keeper_attempts a JOIN keeper_batches b ON b.id = a.batch_id WHERE b.nonce = 1",
    )
    .fetch_one(&env.pool)
    .await?;
    let tx = TxEnvelope::decode_2718(&mut raw.as_slice())?;
    let call = BeatStreamVault::settleBatchCall::abi_decode(tx.input())?;
    assert_eq!(call.items.len(), 1);
    assert!(
        call.items[0].grantSignature.is_empty(),
        "a registered grant's signature was sent again"
    );

    // Each pair settled once per batch that held it; nothing twice.
    assert_eq!(env.settled_events(l3.grant.id(), a).await?, 2);
    assert_eq!(env.settled_events(l3.grant.id(), b).await?, 1);
    assert_eq!(env.settled_events(l4.grant.id(), a).await?, 1);

    let m = &keeper.metrics;
    assert_eq!(m.batches_confirmed.get(), 2);
    assert_eq!(m.vouchers_settled.get(), 5);
    assert!(m.gas_per_voucher.get() > 0 && m.last_settlement_time.get() > 0);
    assert!(m.render().contains("beatstream_keeper_settlement_latency_seconds_count 5"));
    keeper.stop().await?;
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_request_triggers_an_urgent_settlement() -> eyre::Result<()> {
    let env = Env::new().await?;
    let artist = env.signer(1).address();
    let listener = env.listener(3, usdc(50)).await?;
    env.voucher(&listener, artist, usdc(2)).await?;

    // Thresholds nothing reaches, an interval that never comes.
    let mut options = env.keeper_options();
    options.payee_threshold = u128::MAX;
    options.book_threshold = u128::MAX;
    options.max_interval_secs = 86_400;
    options.urgent_window_secs = 0;
    let keeper = env.start_keeper(options);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(env.batches().await?.is_empty(), "settled below every threshold");
    assert_eq!(keeper.metrics.unsettled_value.get(), usdc(2) as i64);

    // The listener asks for everything back: the keeper must settle before the hour's delay ends.
    let vault = env.chain.vault(&env.signer(3));
    let receipt = vault.requestWithdrawal(U256::from(usdc(50))).send().await?.get_receipt().await?;
    eyre::ensure!(receipt.status(), "requestWithdrawal reverted");
    let (_, _, thaw_end) = {
        let acc = vault.accountOf(listener.grant.listener).call().await?;
        (acc.available, acc.thawing, acc.thawEnd)
    };
    env.wait_settled(&listener, artist, usdc(2), 30).await?;
    assert!(env.chain.now().await? < thaw_end.to::<u64>(), "settled only after the delay");
    let urgent: bool =
        sqlx::query_scalar("SELECT urgent FROM keeper_batches").fetch_one(&env.pool).await?;
    assert!(urgent);
    keeper.stop().await?;
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voucher_the_vault_would_skip_is_held_without_blocking_the_rest() -> eyre::Result<()> {
    let env = Env::new().await?;
    let (a, b) = (env.signer(1).address(), env.signer(2).address());
    // Listener 3 promises artist A 8 USDC under one grant...
    let drained = env.listener(3, usdc(10)).await?;
    env.voucher(&drained, a, usdc(8)).await?;
    // ...but artist B settles 9 USDC of another grant first, on its own: 1 USDC is left.
    let other = env.player(3, 2).await?;
    let item = other.item(&env.chain, b, usdc(9))?;
    // An explicit gas limit: v2's vault stops a batch short of gas (BatchCutShort) instead of reverting, so
    // eth_estimateGas finds the least gas at which it settles nothing.
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
    assert_eq!(env.settled(&other, b).await?, usdc(9));
    // Listener 4 is fine.
    let fine = env.listener(4, usdc(10)).await?;
    env.voucher(&fine, a, usdc(3)).await?;
    env.indexed().await?;

    let keeper = env.start_keeper(env.keeper_options());
    env.wait_settled(&fine, a, usdc(3), 30).await?;
    wait("the batch to be confirmed", 10, || async {
        Ok(env.batches().await?.iter().any(|b| b.1 == "confirmed"))
    })
    .await?;
    assert_eq!(env.settled(&drained, a).await?, 0);
    // The doomed voucher never went into a transaction, and waits with its reason.
    assert_eq!(env.batches().await?, vec![(0, "confirmed".to_owned(), 1, 1)]);
    let reason: String = sqlx::query_scalar("SELECT reason FROM keeper_holds WHERE grant_id = $1")
        .bind(drained.grant.id().as_slice())
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(reason, "insufficient_funds");
    assert!(keeper.metrics.vouchers_held.get() >= 1);

    // Once the listener tops up and plays on, the newer voucher lifts the hold and settles.
    env.chain.fund(&env.signer(3), usdc(10)).await?;
    env.voucher(&drained, a, usdc(9)).await?;
    env.wait_settled(&drained, a, usdc(9), 30).await?;
    keeper.stop().await?;
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_is_held_for_good_newer_vouchers_included() -> eyre::Result<()> {
    let env = Env::new().await?;
    let (a, b) = (env.signer(1).address(), env.signer(2).address());
    let revoked = env.listener(3, usdc(50)).await?;
    env.voucher(&revoked, a, usdc(2)).await?;
    let fine = env.listener(4, usdc(50)).await?;
    env.voucher(&fine, b, usdc(1)).await?;
    // The listener revokes the grant; on-chain it takes effect after the delay (an hour here).
    let r = env
        .chain
        .vault(&env.signer(3))
        .revokeGrant(revoked.grant.id())
        .send()
        .await?
        .get_receipt()
        .await?;
    eyre::ensure!(r.status(), "revokeGrant reverted");
    env.chain.warp(3_600).await?;
    env.indexed().await?;

    let keeper = env.start_keeper(env.keeper_options());
    env.wait_settled(&fine, b, usdc(1), 30).await?;
    wait("the batch to be confirmed", 10, || async {
        Ok(env.batches().await?.iter().any(|b| b.1 == "confirmed"))
    })
    .await?;
    assert_eq!(env.batches().await?, vec![(0, "confirmed".to_owned(), 1, 1)]);
    let holds = || async {
        let rows: Vec<(Vec<u8>, String, String)> = sqlx::query_as(
            "SELECT payee, cumulative::text, reason FROM keeper_holds WHERE grant_id = $1",
        )
        .bind(revoked.grant.id().as_slice())
        .fetch_all(&env.pool)
        .await?;
        eyre::Ok(rows)
    };
    let held = vec![(a.to_vec(), usdc(2).to_string(), "grant_revoked".to_owned())];
    assert_eq!(holds().await?, held);

    // Vouchers the relay acked under the grant before it saw the revocation, a newer one and another payee's, can
    // never settle either: they are not simulated again, let alone sent. The other listener's next voucher is.
    env.voucher(&revoked, a, usdc(3)).await?;
    env.voucher(&revoked, b, usdc(1)).await?;
    env.voucher(&fine, b, usdc(2)).await?;
    env.wait_settled(&fine, b, usdc(2), 30).await?;
    let batched: i64 =
        sqlx::query_scalar("SELECT count(*) FROM keeper_batch_items WHERE grant_id = $1")
            .bind(revoked.grant.id().as_slice())
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(batched, 0);
    assert_eq!(holds().await?, held, "the revoked grant's vouchers were simulated again");
    assert_eq!(keeper.metrics.vouchers_held.get(), 1);
    keeper.stop().await?;
    env.stop().await
}
