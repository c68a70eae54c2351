//! The HTTP endpoint is part of the keeper: when it cannot serve, the keeper stops with the cause; `/ready` checks
//! its dependencies when asked.

use std::{net::SocketAddr, time::Duration};

use beatstream_keeper::Error;
use beatstream_testkit::outage::Outage;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// `/ready` runs its checks when asked: with Postgres refusing the keeper it answers 503 naming the database, while
/// `/health` (the loop turns) stays 200; once Postgres is back, the keeper leads again and is ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_names_the_database_while_postgres_refuses_and_recovers() -> eyre::Result<()> {
    let env = Env::new().await?;
    let http = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut options = env.keeper_options();
    options.http = Some(http);
    let keeper = env.start_keeper(options);

    let ready = until_status(http, "/ready", 200).await?;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["checks"]["lease"]["detail"], "leader", "{ready}");
    for check in ["database", "rpc", "settlement"] {
        assert_eq!(ready["checks"][check]["ok"], true, "{check}: {ready}");
    }
    let (_, metrics) = get(http, "/metrics").await?;
    assert!(metrics.contains(r#"service="keeper""#), "{metrics}");
    let balance = metrics
        .lines()
        .find_map(|l| l.strip_prefix("beatstream_keeper_balance_wei "))
        .and_then(|v| v.parse::<f64>().ok());
    assert!(balance.is_some_and(|b| b > 1e18), "anvil's keeper account has ether: {metrics}");

    let outage = Outage::start(&env.pool).await?;
    let down = until_status(http, "/ready", 503).await?;
    assert_eq!(down["status"], "not_ready", "{down}");
    assert_eq!(down["failed"][0], "database", "{down}");
    assert_eq!(down["checks"]["rpc"]["ok"], true, "anvil is up: {down}");
    let (status, body) = get(http, "/health").await?;
    assert_eq!(status, 200, "{body}");

    outage.end().await?;
    let ready = until_status(http, "/ready", 200).await?;
    assert_eq!(ready["checks"]["lease"]["detail"], "leader", "{ready}");
    keeper.stop().await?;
    env.stop().await
}

/// Polls `path` until it answers `status` (30 s at most); returns its JSON body.
async fn until_status(addr: SocketAddr, path: &str, status: u16) -> eyre::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (got, body) = get(addr, path).await?;
        if got == status {
            return Ok(serde_json::from_str(&body)?);
        }
        eyre::ensure!(
            tokio::time::Instant::now() < deadline,
            "{path} still answers {got}, not {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plain HTTP/1.1 GET: the status and the body (status 0 while nothing listens).
async fn get(addr: SocketAddr, path: &str) -> eyre::Result<(u16, String)> {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return Ok((0, String::new()));
    };
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response.split_whitespace().nth(1).unwrap_or("0").parse()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Ok((status, body))
}
