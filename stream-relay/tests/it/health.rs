//! `/health` and `/ready`: the relay stays alive while Postgres is gone, and `/ready` names what is missing.

use std::{net::SocketAddr, time::Duration};

use beatstream_testkit::{TestDb, outage::Outage};
use serde_json::Value;

use crate::harness::{Relay, config, no_rpc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_names_the_database_while_postgres_refuses_and_recovers() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let relay = Relay::start(config(&db, no_rpc())).await?;

    let ready = until_status(relay.addr, "/ready", 200).await?;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["checks"]["database"]["ok"], true, "{ready}");
    assert_eq!(ready["checks"]["accepting"]["detail"], "0 of 50000 connections", "{ready}");
    let metrics = get(relay.addr, "/metrics").await?.1;
    assert!(metrics.contains(r#"beatstream_build_info{git_sha=""#), "{metrics}");
    assert!(metrics.contains(r#"service="relay""#), "{metrics}");

    let outage = Outage::start(db.pool()).await?;
    let down = until_status(relay.addr, "/ready", 503).await?;
    assert_eq!(
        (down["status"].as_str(), &down["failed"]),
        (Some("not_ready"), &serde_json::json!(["database"]))
    );
    assert_eq!(down["checks"]["database"]["ok"], false, "{down}");
    // Liveness does not ask Postgres.
    let (status, body) = get(relay.addr, "/health").await?;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""status":"ok""#), "{body}");

    outage.end().await?;
    until_status(relay.addr, "/ready", 200).await?;
    relay.stop().await
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

/// A plain HTTP/1.1 GET: the status and the body.
async fn get(addr: SocketAddr, path: &str) -> eyre::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
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
