//! Per-connection limits: rate, repeated abuse, idle time.

use std::time::Duration;

use beatstream_testkit::TestDb;

use crate::harness::*;

#[tokio::test]
async fn floods_are_rate_limited() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let mut cfg = config(&db, no_rpc());
    cfg.options.max_frames_per_sec = 5;
    cfg.options.max_errors = 1000;
    let relay = Relay::start(cfg).await?;
    let mut c = Client::connect(&relay).await?;
    // A burst of twice the rate passes the limiter (and fails on its own merits), the rest is refused unread.
    for _ in 0..30 {
        c.send_text(r#"{"type":"play","trackId":1}"#).await?;
    }
    let mut codes = Vec::new();
    for _ in 0..30 {
        if let beatstream_stream_relay::protocol::ServerFrame::Error { code, .. } = c.recv().await?
        {
            codes.push(code);
        }
    }
    let limited = codes.iter().filter(|c| *c == "rate_limited").count();
    assert!((18..=20).contains(&limited), "{limited} rate-limited: {codes:?}");
    assert_eq!(codes[0], "hello_required");
    // Tokens come back with time.
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.send_text(r#"{"type":"play","trackId":1}"#).await?;
    c.expect_error("hello_required").await?;
    relay.stop().await
}

#[tokio::test]
async fn repeated_abuse_closes_the_connection_with_a_reason() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let relay = Relay::start(config(&db, no_rpc())).await?;
    let mut c = Client::connect(&relay).await?;
    // The default allows ten rejected frames in ten seconds.
    for i in 0..10 {
        c.send_text("garbage").await?;
        c.expect_error("malformed_frame").await.map_err(|e| eyre::eyre!("frame {i}: {e}"))?;
    }
    c.send_text("garbage").await?;
    c.expect_error("malformed_frame").await?;
    let close = c.expect_close(5).await?.expect("a close frame");
    assert_eq!(u16::from(close.code), 1008);
    assert_eq!(close.reason.as_str(), "too many errors");

    // Other connections are unaffected.
    let mut d = Client::connect(&relay).await?;
    d.send_text("garbage").await?;
    d.expect_error("malformed_frame").await?;
    relay.stop().await
}

#[tokio::test]
async fn idle_connections_are_closed() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let mut cfg = config(&db, no_rpc());
    cfg.options.idle_timeout_secs = 1;
    let relay = Relay::start(cfg).await?;
    let mut c = Client::connect(&relay).await?;
    let started = std::time::Instant::now();
    let close = c.expect_close(5).await?.expect("a close frame");
    assert_eq!(u16::from(close.code), 1000);
    assert_eq!(close.reason.as_str(), "idle timeout");
    assert!(started.elapsed() >= Duration::from_millis(900));
    relay.stop().await
}
