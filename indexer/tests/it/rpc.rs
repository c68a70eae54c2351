//! The indexer on real-world RPC: through TLS (https:// and wss:// with `--rpc-ca-file`), through a provider that
//! rate-limits (HTTP 429 with `Retry-After`, and a JSON-RPC -32005 naming its pause), and with a first endpoint
//! that is down or overloaded. Each mirrors exactly what a direct index writes.

use std::time::Duration;

use beatstream_primitives::rpc::RpcArgs;
use beatstream_testkit::{
    TestDb,
    postgres::TestCerts,
    rpc_proxy::{Fault, FaultProxy, TlsProxy, refused_url},
};

use crate::harness::{
    Chain, Player, Running, USDC, assert_same, config, dump, fresh_index, settle,
};

/// A chain with an artist and two listeners' settlements: registry and vault events to mirror.
async fn busy_chain() -> eyre::Result<Chain> {
    let chain = Chain::new().await?;
    let (keeper, payee) = (chain.anvil.signer(0), chain.anvil.signer(1));
    chain.register(&payee, "tls-artist", 10).await?;
    let mut players = Vec::new();
    for i in 2..4 {
        let listener = chain.anvil.signer(i);
        chain.fund(&listener, 20 * USDC).await?;
        players.push(Player::new(&chain, listener, 1).await?);
    }
    for round in 1..=2 {
        let items = players
            .iter()
            .map(|p| p.item(&chain, payee.address(), round * 1_000))
            .collect::<eyre::Result<_>>()?;
        settle(&chain, &keeper, items).await?;
    }
    Ok(chain)
}

/// Indexes `chain` through `rpc` into a new database, up to its head, and checks it equals `expected`.
async fn index_through(chain: &Chain, rpc: RpcArgs, expected: &TestDb) -> eyre::Result<TestDb> {
    let db = TestDb::new().await?;
    let mut cfg = config(chain, &db);
    cfg.rpc = rpc;
    let indexer = Running::start(cfg);
    indexer.catch_up(chain).await?;
    indexer.stop().await?;
    assert_same(&dump(&db).await?, &dump(expected).await?);
    Ok(db)
}

#[tokio::test]
async fn syncs_through_https_and_wss_trusting_the_ca_file() -> eyre::Result<()> {
    let chain = busy_chain().await?;
    let expected = fresh_index(&chain).await?;
    let certs = TestCerts::generate()?;
    let tls = TlsProxy::start(&chain.anvil.endpoint_url(), &certs).await?;
    for url in [tls.https_url(), tls.wss_url()] {
        let rpc = RpcArgs { rpc_ca_file: Some(certs.ca()), ..RpcArgs::from(url) };
        index_through(&chain, rpc, &expected).await?;
    }

    // Without the CA the server is not trusted: the indexer stops at start, saying why.
    let db = TestDb::new().await?;
    let mut cfg = config(&chain, &db);
    cfg.rpc = tls.https_url().into();
    let err = Running::start(cfg).finish().await.expect_err("an untrusted server").to_string();
    assert!(err.contains("certificate") || err.contains("UnknownIssuer"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_rate_limiting_provider_is_waited_out_as_long_as_it_asks() -> eyre::Result<()> {
    let chain = busy_chain().await?;
    let expected = fresh_index(&chain).await?;
    let proxy = FaultProxy::start(chain.anvil.endpoint_url()).await?;
    // HTTP 429 with `Retry-After: 1`, three times.
    proxy.fail_next(3, Fault::TooManyRequests { retry_after: "1".into() });
    let db = TestDb::new().await?;
    let mut cfg = config(&chain, &db);
    cfg.rpc = proxy.url().into();
    let indexer = Running::start(cfg);
    indexer.catch_up(&chain).await?;
    let too_many = |f: &Fault| matches!(f, Fault::TooManyRequests { .. });
    proxy.wait_retried(too_many, 3, Duration::from_secs(1)).await?;

    // Then a JSON-RPC -32005 (HTTP 200) that names its own pause, twice, on the indexer's polls of the head.
    let message = "rate limit exceeded, try again in 1500ms";
    proxy.fail_next(2, Fault::RateLimitError { message: message.into() });
    let json = |f: &Fault| matches!(f, Fault::RateLimitError { .. });
    proxy.wait_retried(json, 2, Duration::from_millis(1_500)).await?;
    indexer.catch_up(&chain).await?;
    indexer.stop().await?;
    assert_same(&dump(&db).await?, &dump(&expected).await?);
    Ok(())
}

#[tokio::test]
async fn a_first_endpoint_that_is_down_or_overloaded_is_passed_over_and_tried_again_later()
-> eyre::Result<()> {
    let chain = busy_chain().await?;
    let expected = fresh_index(&chain).await?;
    let direct = chain.anvil.endpoint_url();

    // Nothing listens on the first endpoint.
    index_through(&chain, RpcArgs::new([refused_url(), direct.clone()]), &expected).await?;

    // The first answers 503 to everything; once it recovers, it is the one asked again (after the cooldown).
    let overloaded = FaultProxy::start(direct.clone()).await?;
    overloaded.fail_next(usize::MAX, Fault::Unavailable);
    let db = TestDb::new().await?;
    let mut cfg = config(&chain, &db);
    cfg.rpc = RpcArgs { rpc_cooldown_secs: 1, ..RpcArgs::new([overloaded.url(), direct]) };
    let indexer = Running::start(cfg);
    indexer.catch_up(&chain).await?;
    assert!(!overloaded.seen().is_empty(), "the first endpoint was not tried");
    assert!(overloaded.seen().iter().all(|s| matches!(s.fault, Some(Fault::Unavailable))));

    overloaded.fail_next(0, Fault::Unavailable);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !overloaded.seen().iter().any(|s| s.fault.is_none()) {
        eyre::ensure!(
            tokio::time::Instant::now() < deadline,
            "the recovered first endpoint was not asked again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    indexer.catch_up(&chain).await?;
    indexer.stop().await?;
    assert_same(&dump(&db).await?, &dump(&expected).await?);
    Ok(())
}
