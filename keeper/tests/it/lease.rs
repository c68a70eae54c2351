//! The lease is keyed like the advisory lock, by chain id and vault: keepers of two chains on one database both
//! lead at once, and one's takeover does not move the other's epoch.

use beatstream_testkit::Anvil;

use crate::harness::{Env, usdc, wait};

/// (chain id, holder, epoch) of every lease row.
async fn leases(env: &Env) -> eyre::Result<Vec<(i64, String, i64)>> {
    Ok(sqlx::query_as("SELECT chain_id, holder, epoch FROM keeper_lease ORDER BY chain_id")
        .fetch_all(&env.pool)
        .await?)
}

/// (chain id, keeper id, epoch) of every batch.
async fn batch_epochs(env: &Env) -> eyre::Result<Vec<(i64, String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT chain_id, keeper_id, epoch FROM keeper_batches ORDER BY chain_id, epoch",
    )
    .fetch_all(&env.pool)
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepers_of_two_chains_on_one_database_lead_at_once() -> eyre::Result<()> {
    let one = Env::new().await?;
    let two = one.beside(Anvil::spawn_with(|b| b.chain_id(31338))?).await?;
    let (id_one, id_two) = (one.chain.deployment.chain_id as i64, 31338_i64);
    assert_eq!(two.chain.deployment.chain_id as i64, id_two);
    let artist = one.signer(1).address();
    let l_one = one.listener(3, usdc(50)).await?;
    let l_two = two.listener(3, usdc(50)).await?;
    one.indexed().await?;
    two.indexed().await?;

    let start = |env: &Env, name: &str| {
        let mut options = env.keeper_options();
        options.keeper_id = Some(name.into());
        env.start_keeper(options)
    };
    let a = start(&one, "a");
    let b = start(&two, "b");
    wait("both keepers to lead", 10, || async {
        Ok(a.metrics.leader.get() == 1 && b.metrics.leader.get() == 1)
    })
    .await?;
    for i in 1..=2 {
        one.voucher(&l_one, artist, usdc(i)).await?;
        two.voucher(&l_two, artist, usdc(i)).await?;
        one.wait_settled(&l_one, artist, usdc(i), 30).await?;
        two.wait_settled(&l_two, artist, usdc(i), 30).await?;
    }
    // Each led throughout under its own first epoch, and journaled under it.
    assert_eq!((a.metrics.leader.get(), b.metrics.leader.get()), (1, 1));
    assert_eq!(leases(&one).await?, [(id_one, "a".into(), 1), (id_two, "b".into(), 1)]);
    assert_eq!(batch_epochs(&one).await?, [(id_one, "a".into(), 1), (id_two, "b".into(), 1)]);

    // Chain one's leadership moves to another keeper: its epoch moves, chain two's does not, and chain two's keeper
    // keeps journaling under its epoch.
    a.stop().await?;
    let c = start(&one, "c");
    wait("c to lead", 10, || async { Ok(c.metrics.leader.get() == 1) }).await?;
    assert_eq!(leases(&one).await?, [(id_one, "c".into(), 2), (id_two, "b".into(), 1)]);
    one.voucher(&l_one, artist, usdc(3)).await?;
    two.voucher(&l_two, artist, usdc(3)).await?;
    one.wait_settled(&l_one, artist, usdc(3), 30).await?;
    two.wait_settled(&l_two, artist, usdc(3), 30).await?;
    assert_eq!(b.metrics.leader.get(), 1);
    assert_eq!(leases(&one).await?, [(id_one, "c".into(), 2), (id_two, "b".into(), 1)]);
    assert_eq!(
        batch_epochs(&one).await?,
        [(id_one, "a".into(), 1), (id_one, "c".into(), 2), (id_two, "b".into(), 1)]
    );
    for env in [&one, &two] {
        let player = if std::ptr::eq(env, &one) { &l_one } else { &l_two };
        assert_eq!(env.settled_events(player.grant.id(), artist).await?, 3);
    }
    b.stop().await?;
    c.stop().await?;
    two.stop().await?;
    one.stop().await
}
