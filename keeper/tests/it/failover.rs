//! Two keepers: only the leader submits; the standby takes over when the leader dies.

use std::time::Duration;

use crate::harness::{Env, usdc, wait};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_keeper_submits_and_a_standby_takes_over_when_it_dies() -> eyre::Result<()> {
    let env = Env::new().await?;
    let (a, b) = (env.signer(1).address(), env.signer(2).address());
    let l3 = env.listener(3, usdc(50)).await?;
    let l4 = env.listener(4, usdc(50)).await?;
    env.indexed().await?;

    let mut first = env.keeper_options();
    first.keeper_id = Some("first".into());
    let first = env.start_keeper(first);
    wait("the first keeper to lead", 10, || async { Ok(first.metrics.leader.get() == 1) }).await?;
    let mut second = env.keeper_options();
    second.keeper_id = Some("second".into());
    let second = env.start_keeper(second);

    for i in 1..=3 {
        env.voucher(&l3, a, usdc(i)).await?;
        env.wait_settled(&l3, a, usdc(i), 30).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(second.metrics.leader.get(), 0);
    let submitters: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT keeper_id FROM keeper_batches")
            .fetch_all(&env.pool)
            .await?;
    assert_eq!(submitters, vec!["first".to_owned()]);

    // The leader dies without a word (its task and connections are dropped mid-loop).
    first.task.abort();
    wait("the standby to take over", 10, || async { Ok(second.metrics.leader.get() == 1) }).await?;
    env.voucher(&l4, b, usdc(2)).await?;
    env.wait_settled(&l4, b, usdc(2), 30).await?;
    let (holder, epoch): (String, i64) =
        sqlx::query_as("SELECT holder, epoch FROM keeper_lease").fetch_one(&env.pool).await?;
    assert_eq!((holder.as_str(), epoch), ("second", 2));
    let last: (String, i64) =
        sqlx::query_as("SELECT keeper_id, epoch FROM keeper_batches ORDER BY id DESC LIMIT 1")
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(last, ("second".to_owned(), 2));
    assert_eq!(env.settled_events(l3.grant.id(), a).await?, 3);
    second.stop().await?;
    env.stop().await
}
