//! `/metrics` counts the requests made and the subscriptions open; `/ready` names what is missing while Postgres
//! refuses the API, and `/health` stays up.

use std::{net::SocketAddr, time::Duration};

use beatstream_testkit::outage::Outage;
use serde_json::{Value, json};

use crate::{harness::Env, subscriptions::Sub};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_requests_made_and_the_subscriptions_open() -> eyre::Result<()> {
    let env = Env::scene().await?;
    let metrics = get(env.api, "/metrics").await?.1;
    assert!(metrics.contains(r#"beatstream_build_info{git_sha=""#), "{metrics}");
    assert!(metrics.contains(r#"service="api""#), "{metrics}");
    assert!(!metrics.contains("beatstream_api_requests_total{"), "nothing asked yet:\n{metrics}");

    env.data("query Names { artist(name: \"alice\") { name } }", json!({})).await?;
    let bad = env.query("{ artist(address: \"0x12\") { name } }", json!({})).await?;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{bad}");
    let metrics = get(env.api, "/metrics").await?.1;
    for line in [
        r#"beatstream_api_requests_total{operation="query",outcome="ok"} 1"#,
        r#"beatstream_api_requests_total{operation="query",outcome="error"} 1"#,
        r#"beatstream_api_errors_total{code="BAD_USER_INPUT"} 1"#,
        "beatstream_api_request_duration_seconds_count 2",
        "beatstream_api_subscriptions 0",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }

    // A subscription is open while its socket is, and counts as a request once it ends.
    let sub = Sub::open(&env, "subscription { settlements(artist: \"alice\") { payee } }").await?;
    until_metric(env.api, "beatstream_api_subscriptions 1").await?;
    drop(sub);
    until_metric(env.api, "beatstream_api_subscriptions 0").await?;
    until_metric(
        env.api,
        r#"beatstream_api_requests_total{operation="subscription",outcome="ok"} 1"#,
    )
    .await?;
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_names_the_database_while_postgres_refuses_and_recovers() -> eyre::Result<()> {
    let env = Env::scene().await?;
    let ready = until_status(env.api, "/ready", 200).await?;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["checks"]["database"]["ok"], true, "{ready}");
    assert_eq!(ready["checks"]["listen"]["ok"], true, "{ready}");

    let outage = Outage::start(&env.pool).await?;
    let down = until_status(env.api, "/ready", 503).await?;
    assert_eq!(down["status"], "not_ready", "{down}");
    assert_eq!(down["failed"][0], "database", "{down}");
    assert_eq!(down["checks"]["database"]["ok"], false, "{down}");
    // The LISTEN connection was ended too, and cannot come back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = get(env.api, "/ready").await?;
        let body: Value = serde_json::from_str(&body)?;
        if body["failed"] == json!(["database", "listen"]) {
            break;
        }
        eyre::ensure!(tokio::time::Instant::now() < deadline, "listen still ok: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(env.api, "/health").await?, (200, "ok".to_owned()));

    outage.end().await?;
    until_status(env.api, "/ready", 200).await?;
    env.stop().await
}

/// Polls `/metrics` until it has `line` (20 s at most).
async fn until_metric(addr: SocketAddr, line: &str) -> eyre::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = get(addr, "/metrics").await?.1;
        if metrics.lines().any(|l| l == line) {
            return Ok(());
        }
        eyre::ensure!(tokio::time::Instant::now() < deadline, "{line} missing from\n{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
