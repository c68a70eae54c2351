//! A transaction that does not get mined is replaced with raised fees and confirms once.

use beatstream_testkit::Anvil;

use crate::harness::{Env, usdc, wait};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_transaction_is_bumped_and_confirms_once() -> eyre::Result<()> {
    let env = Env::with_anvil(Anvil::spawn()?).await?;
    let artist = env.signer(1).address();
    let listener = env.listener(3, usdc(50)).await?;
    env.voucher(&listener, artist, usdc(5)).await?;
    env.indexed().await?;

    // Mining stops: the settlement sits in the pool.
    env.automine(false).await?;
    let mut options = env.keeper_options();
    options.stall_secs = 1;
    // Never give up within the test: every attempt is a fee bump.
    options.max_attempts = 50;
    let keeper = env.start_keeper(options);
    wait("three attempts", 30, || async {
        Ok(env.batches().await?.first().is_some_and(|b| b.3 >= 3))
    })
    .await?;
    assert!(keeper.metrics.bumps.get() >= 2);
    // Stuck past --keeper-stall-secs: /ready says so.
    wait("the stall to show", 10, || async { Ok(keeper.metrics.stall().is_some()) }).await?;

    // Each replacement raised both fees by at least 12.5%.
    let fees: Vec<(String, String)> = sqlx::query_as(
        "SELECT max_fee_per_gas::text, max_priority_fee_per_gas::text FROM keeper_attempts ORDER BY attempt",
    )
    .fetch_all(&env.pool)
    .await?;
    for pair in fees.windows(2) {
        let (old_max, old_prio): (u128, u128) = (pair[0].0.parse()?, pair[0].1.parse()?);
        let (new_max, new_prio): (u128, u128) = (pair[1].0.parse()?, pair[1].1.parse()?);
        assert!(new_max * 1000 >= old_max * 1125, "max fee {old_max} -> {new_max}");
        assert!(new_prio * 1000 >= old_prio * 1125, "priority fee {old_prio} -> {new_prio}");
    }

    // Mining resumes: exactly one attempt is mined and the voucher is paid once.
    env.automine(true).await?;
    env.chain.mine(1).await?;
    env.wait_settled(&listener, artist, usdc(5), 20).await?;
    wait("the batch to be confirmed", 20, || async {
        Ok(env.batches().await?.first().is_some_and(|b| b.1 == "confirmed"))
    })
    .await?;
    assert_eq!(env.settled_events(listener.grant.id(), artist).await?, 1);
    let mined: Vec<u8> = sqlx::query_scalar("SELECT confirmed_hash FROM keeper_batches")
        .fetch_one(&env.pool)
        .await?;
    let known: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM keeper_attempts WHERE hash = $1)")
            .bind(&mined)
            .fetch_one(&env.pool)
            .await?;
    assert!(known, "the mined transaction is not in the journal");
    wait("the stall to clear", 10, || async { Ok(keeper.metrics.stall().is_none()) }).await?;
    keeper.stop().await?;
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_last_attempt_the_nonce_is_freed_and_the_vouchers_settle_again() -> eyre::Result<()>
{
    let env = Env::new().await?;
    let artist = env.signer(1).address();
    let listener = env.listener(3, usdc(50)).await?;
    env.voucher(&listener, artist, usdc(5)).await?;
    env.indexed().await?;

    env.automine(false).await?;
    let mut options = env.keeper_options();
    options.max_attempts = 2;
    options.stall_secs = 1;
    let http = free_addr()?;
    options.http = Some(http);
    let keeper = env.start_keeper(options);
    // Two settlement attempts, then a self-transfer at the same nonce.
    wait("the cancelling self-transfer", 30, || async {
        let kinds: Vec<String> =
            sqlx::query_scalar("SELECT kind FROM keeper_attempts ORDER BY attempt")
                .fetch_all(&env.pool)
                .await?;
        Ok(kinds.last().is_some_and(|k| k == "cancel"))
    })
    .await?;
    assert!(keeper.metrics.cancellations.get() >= 1);
    // Stuck: readiness says so and names the check; the keeper is alive all the while.
    wait("/ready to report the stall", 10, || async {
        Ok(get(http, "/ready").await?.starts_with("HTTP/1.1 503"))
    })
    .await?;
    let ready = get(http, "/ready").await?;
    assert!(ready.contains(r#""failed":["settlement"]"#), "{ready}");
    assert!(ready.contains("stalled: a settlement transaction has been unconfirmed"), "{ready}");
    let health = get(http, "/health").await?;
    assert!(health.starts_with("HTTP/1.1 200") && health.ends_with("ok (leader)"), "{health}");
    let metrics = get(http, "/metrics").await?;
    assert!(metrics.contains("beatstream_keeper_cancellations_total"), "{metrics}");
    assert!(metrics.contains("beatstream_keeper_stalled 1"), "{metrics}");
    let oldest = metrics
        .lines()
        .find_map(|l| l.strip_prefix("beatstream_keeper_oldest_pending_seconds "))
        .and_then(|v| v.parse::<i64>().ok());
    assert!(oldest.is_some_and(|s| s >= 1), "the stuck transaction's age: {metrics}");

    // Mining resumes: the self-transfer (the highest fee) is mined, the batch is given up, and its voucher is
    // settled under the next nonce.
    env.automine(true).await?;
    env.chain.mine(1).await?;
    env.wait_settled(&listener, artist, usdc(5), 30).await?;
    wait("the second batch to be confirmed", 20, || async {
        let b = env.batches().await?;
        Ok(b.len() == 2 && b[1].1 == "confirmed")
    })
    .await?;
    let b = env.batches().await?;
    assert_eq!((b[0].0, b[0].1.as_str()), (0, "cancelled"));
    assert_eq!((b[1].0, b[1].1.as_str(), b[1].2), (1, "confirmed", 1));
    assert_eq!(env.settled_events(listener.grant.id(), artist).await?, 1);
    wait("/ready to recover", 10, || async {
        Ok(get(http, "/ready").await?.starts_with("HTTP/1.1 200"))
    })
    .await?;
    keeper.stop().await?;
    env.stop().await
}

fn free_addr() -> eyre::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// A plain HTTP/1.1 GET; returns the whole response.
async fn get(addr: std::net::SocketAddr, path: &str) -> eyre::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return Ok(String::new());
    };
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: keeper\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}
