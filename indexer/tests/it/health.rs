//! `/health` and `/ready`: the loop stays alive while Postgres is gone, and `/ready` names what is missing.

use std::{net::SocketAddr, time::Duration};

use beatstream_testkit::{TestDb, outage::Outage};
use serde_json::Value;

use crate::harness::{Chain, Running, config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_names_the_database_while_postgres_refuses_and_recovers() -> eyre::Result<()> {
    let chain = Chain::new().await?;
    let db = TestDb::new().await?;
    let addr = free_addr()?;
    let mut cfg = config(&chain, &db);
    cfg.options.http = Some(addr);
    let indexer = Running::start(cfg);
    indexer.catch_up(&chain).await?;

    let ready = until_status(addr, "/ready", 200).await?;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["failed"], serde_json::json!([]), "{ready}");
    for check in ["database", "rpc", "lag"] {
        assert_eq!(ready["checks"][check]["ok"], true, "{check}: {ready}");
    }
    let metrics = get(addr, "/metrics").await?.1;
    assert!(metrics.contains(r#"beatstream_build_info{git_sha=""#), "{metrics}");
    assert!(metrics.contains(r#"service="indexer""#), "{metrics}");

    let outage = Outage::start(db.pool()).await?;
    let down = until_status(addr, "/ready", 503).await?;
    assert_eq!(down["status"], "not_ready", "{down}");
    let failed = down["failed"].as_array().expect("a list").clone();
    assert!(failed.contains(&"database".into()), "{down}");
    assert!(!failed.contains(&"rpc".into()), "the RPC endpoint is up: {down}");
    assert_eq!(down["checks"]["database"]["ok"], false, "{down}");
    assert!(down["checks"]["database"]["error"].as_str().is_some_and(|e| !e.is_empty()), "{down}");
    // Liveness: the loop goes on retrying.
    let (status, body) = get(addr, "/health").await?;
    assert_eq!(status, 200, "{body}");

    outage.end().await?;
    until_status(addr, "/ready", 200).await?;
    indexer.stop().await
}

fn free_addr() -> eyre::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Polls `path` until it answers `status` (20 s at most); returns its JSON body.
async fn until_status(addr: SocketAddr, path: &str, status: u16) -> eyre::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
