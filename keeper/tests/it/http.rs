//! The HTTP endpoint is part of the keeper: when it cannot serve, the keeper stops with the cause.

use beatstream_keeper::Error;

use crate::harness::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_address_in_use_stops_the_keeper_with_its_cause() -> eyre::Result<()> {
    let env = Env::new().await?;
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let mut options = env.keeper_options();
    options.http = Some(taken.local_addr()?);
    let err =
        env.start_keeper(options).finished().await.expect_err("the keeper ran without /health");
    assert!(matches!(err, Error::Http(_)), "{err:?}");
    assert!(err.to_string().starts_with("http endpoint: "), "{err}");
    drop(taken);
    env.stop().await
}
