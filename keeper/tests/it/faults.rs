//! Crashes inside the write-ahead window and nonces that went astray: each heals without paying twice.

use alloy::{
    network::TransactionBuilder,
    primitives::{B256, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
};
use beatstream_keeper::{Error, FailPoint};

use crate::harness::{Env, KEEPER, usdc, wait};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_broadcast_and_journal_update_does_not_pay_twice() -> eyre::Result<()> {
    let env = Env::new().await?;
    let artist = env.signer(1).address();
    let listener = env.listener(3, usdc(50)).await?;
    env.voucher(&listener, artist, usdc(5)).await?;
    env.indexed().await?;

    // The transaction goes out (and anvil mines it) but the keeper dies before the journal says so.
    let mut options = env.keeper_options();
    options.fail_point = Some(FailPoint::AfterBroadcast);
    let crashed = env.start_keeper(options).finished().await;
    assert!(matches!(crashed, Err(Error::FailPoint(FailPoint::AfterBroadcast))), "{crashed:?}");
    assert_eq!(env.batches().await?, vec![(0, "pending".to_owned(), 1, 1)]);
    // anvil mines a sent transaction on its own task, so the block can land just after the send returns.
    env.wait_settled(&listener, artist, usdc(5), 10).await?;

    // The restarted keeper finds the journaled transaction mined and sends nothing more.
    let keeper = env.start_keeper(env.keeper_options());
    wait("the journal to catch up", 20, || async {
        Ok(env.batches().await? == vec![(0, "confirmed".to_owned(), 1, 1)])
    })
    .await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(env.batches().await?.len(), 1);
    assert_eq!(env.settled_events(listener.grant.id(), artist).await?, 1);
    let sent = env.chain.provider.get_transaction_count(env.signer(KEEPER).address()).await?;
    assert_eq!(sent, 1, "the keeper account sent more than the one settlement");
    keeper.stop().await?;
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_taken_by_another_process_heals() -> eyre::Result<()> {
    let env = Env::new().await?;
    let artist = env.signer(1).address();
    let listener = env.listener(3, usdc(50)).await?;
    env.voucher(&listener, artist, usdc(5)).await?;
    env.indexed().await?;

    // The keeper journals a batch at nonce 0 and dies before sending it.
    let mut options = env.keeper_options();
    options.fail_point = Some(FailPoint::AfterJournal);
    let crashed = env.start_keeper(options).finished().await;
    assert!(matches!(crashed, Err(Error::FailPoint(FailPoint::AfterJournal))), "{crashed:?}");
    assert_eq!(env.batches().await?, vec![(0, "pending".to_owned(), 1, 1)]);

    // Another process with the same key uses nonce 0.
    let other = env.chain.as_(&env.signer(KEEPER));
    let me = env.signer(KEEPER).address();
    let tx = TransactionRequest::default().with_to(me).with_value(U256::ZERO).with_nonce(0);
    other.send_transaction(tx).await?.get_receipt().await?;

    // The keeper gives the batch up (its nonce is gone) and settles the voucher under the next one, once.
    let keeper = env.start_keeper(env.keeper_options());
    env.wait_settled(&listener, artist, usdc(5), 30).await?;
    wait("the journal to settle", 10, || async {
        Ok(env.batches().await?.iter().any(|b| b.1 == "confirmed"))
    })
    .await?;
    assert_eq!(
        env.batches().await?,
        vec![(0, "cancelled".to_owned(), 1, 1), (1, "confirmed".to_owned(), 1, 1)]
    );
    assert_eq!(env.settled_events(listener.grant.id(), artist).await?, 1);
    keeper.stop().await?;
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_transaction_and_the_nonce_gap_it_leaves_heal() -> eyre::Result<()> {
    let env = Env::new().await?;
    let (a, b) = (env.signer(1).address(), env.signer(2).address());
    let l3 = env.listener(3, usdc(50)).await?;
    let l4 = env.listener(4, usdc(50)).await?;
    env.indexed().await?;
    env.automine(false).await?;

    // Two settlements in the pool, at nonces 0 and 1.
    let mut options = env.keeper_options();
    options.bump_after_secs = 3_600;
    let keeper = env.start_keeper(options.clone());
    env.voucher(&l3, a, usdc(1)).await?;
    wait("the first batch to be sent", 20, || async {
        Ok(env.batches().await?.first().is_some_and(|b| b.1 == "broadcast"))
    })
    .await?;
    env.voucher(&l4, b, usdc(2)).await?;
    wait("the second batch to be sent", 20, || async {
        Ok(env.batches().await?.get(1).is_some_and(|b| b.1 == "broadcast"))
    })
    .await?;
    keeper.stop().await?;

    // The node drops the first: the second can never be mined.
    let first: Vec<u8> = sqlx::query_scalar(
        "SELECT a.hash FROM keeper_attempts a JOIN keeper_batches b ON b.id = a.batch_id WHERE b.nonce = 0",
    )
    .fetch_one(&env.pool)
    .await?;
    env.rpc("anvil_dropTransaction", serde_json::json!([B256::from_slice(&first)])).await?;
    env.chain.mine(2).await?;
    assert_eq!(env.settled(&l4, b).await?, 0, "the transaction after the gap was mined");

    // The keeper notices the drop, sends the first again, and both are mined.
    let keeper = env.start_keeper(options);
    wait("the first batch to be sent again", 20, || async {
        Ok(keeper.metrics.rebroadcasts.get() >= 1)
    })
    .await?;
    // Mine until both are in (the node may include them in one block or two).
    wait("both settlements to be mined", 30, || async {
        env.chain.mine(1).await?;
        Ok(env.settled(&l3, a).await? == usdc(1) && env.settled(&l4, b).await? == usdc(2))
    })
    .await?;
    wait("both batches to be confirmed", 20, || async {
        env.chain.mine(1).await?;
        Ok(env.batches().await?.iter().all(|b| b.1 == "confirmed"))
    })
    .await?;
    assert_eq!(env.batches().await?.len(), 2);
    assert_eq!(env.settled_events(l3.grant.id(), a).await?, 1);
    assert_eq!(env.settled_events(l4.grant.id(), b).await?, 1);
    keeper.stop().await?;
    env.automine(true).await?;
    env.stop().await
}
