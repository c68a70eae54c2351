//! Settlements removed by reorgs are settled again: before confirmation from the journal, after it from the
//! indexer's view of the chain.

use crate::harness::{Env, usdc, wait};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_reorged_out_before_confirmation_is_sent_again() -> eyre::Result<()> {
    let env = Env::new().await?;
    let artist = env.signer(1).address();
    let listener = env.listener(3, usdc(50)).await?;
    env.indexed().await?;

    let mut options = env.keeper_options();
    options.confirmations = 3;
    let snapshot = env.chain.snapshot().await?;
    env.voucher(&listener, artist, usdc(5)).await?;
    let keeper = env.start_keeper(options);
    wait("the settlement to be mined", 20, || async {
        Ok(env.batches().await?.first().is_some_and(|b| b.1 == "mined"))
    })
    .await?;
    assert_eq!(env.settled(&listener, artist).await?, usdc(5));

    // The block holding it is reorganised away.
    env.chain.revert(snapshot).await?;
    assert_eq!(env.settled(&listener, artist).await?, 0);
    wait("the reorg to be seen", 20, || async { Ok(keeper.metrics.reorgs.get() >= 1) }).await?;
    env.wait_settled(&listener, artist, usdc(5), 30).await?;
    env.chain.mine(3).await?;
    wait("the batch to be confirmed", 20, || async {
        Ok(env.batches().await?.first().is_some_and(|b| b.1 == "confirmed"))
    })
    .await?;
    assert_eq!(env.batches().await?.len(), 1, "the same batch was sent again");
    let reorgs: i32 =
        sqlx::query_scalar("SELECT reorgs FROM keeper_batches").fetch_one(&env.pool).await?;
    assert!(reorgs >= 1);
    assert_eq!(env.settled_events(listener.grant.id(), artist).await?, 1);
    keeper.stop().await?;
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_reorged_out_after_confirmation_is_settled_again() -> eyre::Result<()> {
    let env = Env::new().await?;
    let artist = env.signer(1).address();
    let listener = env.listener(3, usdc(50)).await?;
    env.indexed().await?;

    let snapshot = env.chain.snapshot().await?;
    env.voucher(&listener, artist, usdc(5)).await?;
    let keeper = env.start_keeper(env.keeper_options());
    wait("the settlement to be confirmed and indexed", 20, || async {
        let confirmed = env.batches().await?.first().is_some_and(|b| b.1 == "confirmed");
        let indexed: Option<String> =
            sqlx::query_scalar("SELECT cumulative::text FROM settled_pairs")
                .fetch_optional(&env.pool)
                .await?;
        Ok(confirmed && indexed.as_deref() == Some("5000000"))
    })
    .await?;

    // A reorg deeper than the keeper's confirmation depth: the indexer rolls the settlement back, and the keeper
    // settles the voucher again in a new batch.
    env.chain.revert(snapshot).await?;
    env.chain.mine(3).await?;
    env.wait_settled(&listener, artist, usdc(5), 30).await?;
    wait("the new batch to be confirmed", 20, || async {
        Ok(env.batches().await?.iter().filter(|b| b.1 == "confirmed").count() == 2)
    })
    .await?;
    assert_eq!(env.settled_events(listener.grant.id(), artist).await?, 1);
    keeper.stop().await?;
    env.stop().await
}
