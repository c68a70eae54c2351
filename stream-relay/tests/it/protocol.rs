//! Every message kind, in the order a player uses them, checked on the wire and in the database.

use alloy::primitives::U256;
use beatstream_primitives::eip712;
use beatstream_stream_relay::protocol::{ClientFrame, ServerFrame};
use beatstream_testkit::TestDb;

use crate::harness::*;

#[tokio::test]
async fn hello_play_beat_voucher_ack_stop_closed() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let player = Player::new(1_000_000);
    seed_listener(db.pool(), player.listener(), 700_000, 300_000).await?;
    let relay = Relay::start(config(&db, no_rpc())).await?;
    let mut c = Client::connect(&relay).await?;

    // ready: available is the vault's available funds; the 300,000 thawing back no new voucher (v2's rule).
    assert_eq!(c.hello(&player).await?, U256::from(700_000));

    // session: track 1 has no rate of its own, so it plays at the artist's (as playTerms does).
    c.send(&ClientFrame::Play {
        track_id: beatstream_stream_relay::protocol::Uint("1".into()),
        from: None,
        beats: None,
    })
    .await?;
    let (session, payee) = match c.recv().await? {
        ServerFrame::Session { session_id, track_id, payee, rate_per_second, app_session_id } => {
            assert_eq!((track_id.as_str(), rate_per_second.as_str()), ("1", "100"));
            assert_eq!(app_session_id, None, "a vault session has no Yellow app session");
            (session_id, payee)
        }
        other => eyre::bail!("expected session, got {other:?}"),
    };
    assert_eq!(payee.parse::<alloy::primitives::Address>()?, scene.alice.payee);
    // beat 1 comes at once and asks for one second.
    assert_eq!(c.beat_of(&session).await?, (1, U256::from(100)));
    assert_eq!(c.pay(&player, scene.alice.payee, 100).await?, session);
    assert_eq!(c.beat_of(&session).await?, (2, U256::from(200)));
    assert_eq!(c.pay(&player, scene.alice.payee, 200).await?, session);

    // Acked means stored: the newest voucher with its signature, which recovers to the session key.
    let (cumulative, sig) =
        stored_voucher(db.pool(), player.grant_id(), scene.alice.payee).await?.unwrap();
    assert_eq!(cumulative, U256::from(200));
    let digest = domain().voucher_digest(player.grant_id(), scene.alice.payee, cumulative);
    assert_eq!(eip712::recover(digest, &sig)?, player.key.address());

    c.send(&ClientFrame::Stop { session_id: session.clone() }).await?;
    let total =
        c.recv_until(|f| matches!(f, ServerFrame::Closed { .. })).await.map(|f| match f {
            ServerFrame::Closed { session_id, total } => (session_id, total),
            _ => unreachable!(),
        })?;
    assert_eq!(total, (session.clone(), "200".into()));

    // The session's history is recorded.
    let (status, reason, seconds, amount, track, listener, relay_id): (
        String,
        Option<String>,
        i32,
        String,
        String,
        Vec<u8>,
        String,
    ) = sqlx::query_as(
        "SELECT status, close_reason, seconds, amount::text, track_id::text, listener, relay_id
         FROM sessions WHERE session_id = $1::uuid",
    )
    .bind(&session)
    .fetch_one(db.pool())
    .await?;
    assert_eq!((status.as_str(), reason.as_deref()), ("closed", Some("stopped")));
    assert!(seconds >= 2, "{seconds}");
    assert_eq!((amount.as_str(), track.as_str()), ("200", "1"));
    assert_eq!(listener, player.listener().to_vec());
    assert!(relay_id.starts_with("relay-"));

    // A second connection under the same grant sees the debt, and a new play starts from the stored cumulative.
    drop(c);
    let mut c = Client::connect(&relay).await?;
    assert_eq!(c.hello(&player).await?, U256::from(700_000 - 200));
    let (_, owed) = c.play(1).await?;
    assert_eq!(owed, U256::from(300));
    relay.stop().await
}

#[tokio::test]
async fn pauses_when_vouchers_fall_behind_and_resumes_when_they_catch_up() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let player = Player::new(1_000_000);
    seed_listener(db.pool(), player.listener(), 1_000_000, 0).await?;
    let mut cfg = config(&db, no_rpc());
    cfg.options.grace_beats = 2;
    let relay = Relay::start(cfg).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&player).await?;
    let (session, _) = c.play(1).await?;

    // Pay nothing: beats 2 and 3 come (up to the grace of two beats behind), then a pause.
    let mut last = 1;
    let paused = loop {
        match c.recv().await? {
            ServerFrame::Beat { second, .. } => last = second,
            ServerFrame::Paused { session_id, reason } => break (session_id, reason),
            other => eyre::bail!("unexpected {other:?}"),
        }
    };
    assert_eq!(paused, (session.clone(), "vouchers_behind".to_owned()));
    assert_eq!(last, 3, "two beats of grace after the first");
    // The pause is recorded by the next group commit.
    let mut status = String::new();
    for _ in 0..50 {
        status = sqlx::query_scalar("SELECT status FROM sessions WHERE session_id = $1::uuid")
            .bind(&session)
            .fetch_one(db.pool())
            .await?;
        if status == "paused" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(status, "paused");

    // No beats while paused.
    assert!(tokio::time::timeout(std::time::Duration::from_millis(400), c.recv()).await.is_err());

    // Catching up resumes: the ack, then beat 4.
    c.pay(&player, scene.alice.payee, 300).await?;
    assert_eq!(c.beat_of(&session).await?, (4, U256::from(400)));
    relay.stop().await
}

#[tokio::test]
async fn new_play_for_the_same_artist_ends_the_old_session() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let player = Player::new(1_000_000);
    seed_listener(db.pool(), player.listener(), 1_000_000, 0).await?;
    let relay = Relay::start(config(&db, no_rpc())).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&player).await?;
    let (first, _) = c.play(1).await?;
    c.pay(&player, scene.alice.payee, 100).await?;

    // Another artist: a second session alongside.
    let (bob_session, bob_owed) = c.play(3).await?;
    assert_eq!(bob_owed, U256::from(50));
    c.pay(&player, scene.bob.payee, 50).await?;

    // Same artist again: the first session closes with what it was paid, the new one starts from there.
    c.send(&ClientFrame::Play {
        track_id: beatstream_stream_relay::protocol::Uint("2".into()),
        from: None,
        beats: None,
    })
    .await?;
    let mut closed = None;
    let mut second = None;
    while closed.is_none() || second.is_none() {
        match c.recv().await? {
            ServerFrame::Closed { session_id, total } => closed = Some((session_id, total)),
            ServerFrame::Session { session_id, rate_per_second, .. } => {
                assert_eq!(rate_per_second, "250");
                second = Some(session_id);
            }
            _ => {}
        }
    }
    assert_eq!(closed.unwrap(), (first.clone(), "100".to_owned()));
    let second = second.unwrap();
    assert_ne!(second, first);
    assert_ne!(second, bob_session);
    let (reason,): (Option<String>,) =
        sqlx::query_as("SELECT close_reason FROM sessions WHERE session_id = $1::uuid")
            .bind(&first)
            .fetch_one(db.pool())
            .await?;
    assert_eq!(reason.as_deref(), Some("superseded"));
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE ended_at IS NULL")
        .fetch_one(db.pool())
        .await?;
    assert_eq!(live, 2);
    relay.stop().await
}

#[tokio::test]
async fn a_track_that_ends_closes_its_session_once_paid() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let player = Player::new(1_000_000);
    seed_listener(db.pool(), player.listener(), 1_000_000, 0).await?;
    let relay = Relay::start(config(&db, no_rpc())).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&player).await?;
    // Track 2: three seconds at 250.
    let (session, owed) = c.play(2).await?;
    assert_eq!(owed, U256::from(250));
    let mut paid = 0u64;
    let total = loop {
        match c.recv().await? {
            ServerFrame::Beat { owed, .. } => {
                paid = owed.parse()?;
                c.send(&player.voucher(scene.alice.payee, paid)).await?;
            }
            ServerFrame::Ack { .. } => {}
            ServerFrame::Closed { session_id, total } => {
                assert_eq!(session_id, session);
                break total;
            }
            other => eyre::bail!("unexpected {other:?}"),
        }
    };
    assert_eq!((paid, total.as_str()), (750, "750"));
    let reason: Option<String> =
        sqlx::query_scalar("SELECT close_reason FROM sessions WHERE session_id = $1::uuid")
            .bind(&session)
            .fetch_one(db.pool())
            .await?;
    assert_eq!(reason.as_deref(), Some("ended"));
    relay.stop().await
}

#[tokio::test]
async fn graceful_shutdown_stores_in_flight_vouchers_and_closes_sessions() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let player = Player::new(1_000_000);
    seed_listener(db.pool(), player.listener(), 1_000_000, 0).await?;
    let relay = Relay::start(config(&db, no_rpc())).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&player).await?;
    let (session, _) = c.play(1).await?;
    c.send(&player.voucher(scene.alice.payee, 100)).await?;
    // Give the frame time to reach the relay before the shutdown races it.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    relay.shutdown.cancel();

    let mut acked = false;
    let mut closed = None;
    let close = loop {
        match c.event_within(10).await? {
            Event::Frame(ServerFrame::Ack { cumulative, .. }) => acked = cumulative == "100",
            Event::Frame(ServerFrame::Closed { session_id, total }) => {
                closed = Some((session_id, total))
            }
            Event::Frame(_) => {}
            Event::Closed(frame) => break frame,
        }
    };
    assert!(acked, "the in-flight voucher is acked before the socket closes");
    assert_eq!(closed, Some((session.clone(), "100".to_owned())));
    let close = close.expect("a close frame");
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(close.reason.as_str(), "relay shutting down");
    tokio::time::timeout(std::time::Duration::from_secs(20), relay.task).await???;

    let (status, reason): (String, Option<String>) =
        sqlx::query_as("SELECT status, close_reason FROM sessions WHERE session_id = $1::uuid")
            .bind(&session)
            .fetch_one(db.pool())
            .await?;
    assert_eq!((status.as_str(), reason.as_deref()), ("closed", Some("shutdown")));
    assert_eq!(
        stored_voucher(db.pool(), player.grant_id(), scene.alice.payee).await?.unwrap().0,
        U256::from(100)
    );
    Ok(())
}

#[tokio::test]
async fn health_and_metrics() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let player = Player::new(1_000_000);
    seed_listener(db.pool(), player.listener(), 1_000_000, 0).await?;
    let relay = Relay::start(config(&db, no_rpc())).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&player).await?;
    c.play(1).await?;
    c.pay(&player, scene.alice.payee, 100).await?;
    c.send_text("nonsense").await?;
    c.expect_error("malformed_frame").await?;

    let health = http_get(relay.addr, "/health").await?;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(
        health.contains(r#""connections":1"#) && health.contains(r#""sessions":1"#),
        "{health}"
    );
    let metrics = http_get(relay.addr, "/metrics").await?;
    for line in [
        "beatstream_relay_connections 1",
        "beatstream_relay_sessions_live 1",
        "beatstream_relay_vouchers_acked_total 1",
        "beatstream_relay_ack_latency_seconds_count 1",
        r#"beatstream_relay_errors_total{code="malformed_frame"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    relay.stop().await
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> eyre::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

/// A quiet session (`play` with `beats: false`) hears the beat that starts it and no other while its player pays each
/// second on its own clock: every voucher is acked and no beat comes. When the player stops paying, the session
/// pauses with the newest beat sent again (what to pay to resume); paying it resumes the session with one beat, and
/// `stop` reports the total.
#[tokio::test]
async fn a_quiet_session_sends_only_the_beats_that_set_the_players_clock() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let alice = scene.alice.payee;
    let player = Player::new(1_000_000);
    seed_listener(db.pool(), player.listener(), 1_000_000, 0).await?;
    let mut cfg = config(&db, no_rpc());
    cfg.options.beat_ms = 100;
    cfg.options.grace_beats = 2;
    let relay = Relay::start(cfg).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&player).await?;
    c.send(&ClientFrame::Play {
        track_id: beatstream_stream_relay::protocol::Uint("1".into()),
        from: None,
        beats: Some(false),
    })
    .await?;
    let session = match c.recv().await? {
        ServerFrame::Session { session_id, .. } => session_id,
        other => eyre::bail!("expected session, got {other:?}"),
    };
    assert_eq!(c.beat_of(&session).await?, (1, U256::from(100)));

    // Ten seconds paid on the player's own clock: acks only, never a beat.
    let mut paid = 100;
    let start = tokio::time::Instant::now();
    for second in 1..=10u64 {
        c.send(&player.voucher(alice, paid)).await?;
        match c.recv().await? {
            ServerFrame::Ack { cumulative, .. } => assert_eq!(cumulative, paid.to_string()),
            other => eyre::bail!("expected the ack of {paid}, got {other:?}"),
        }
        tokio::time::sleep_until(start + std::time::Duration::from_millis(100 * second)).await;
        paid += 100;
    }
    paid -= 100;

    // The player stops paying: after the grace the newest beat comes again, then `paused`.
    let (second, owed) = match c.recv().await? {
        ServerFrame::Beat { session_id, second, owed } if session_id == session => {
            (second, owed.parse::<u64>()?)
        }
        other => eyre::bail!("expected the beat a pause repeats, got {other:?}"),
    };
    assert!(
        owed > paid && owed - paid > 200,
        "paused only past the grace: owed {owed}, paid {paid}"
    );
    assert_eq!(u64::from(second) * 100, owed);
    match c.recv().await? {
        ServerFrame::Paused { session_id, reason } => {
            assert_eq!(
                (session_id.as_str(), reason.as_str()),
                (session.as_str(), "vouchers_behind")
            )
        }
        other => eyre::bail!("expected paused, got {other:?}"),
    }
    // Paying what it said resumes the session, which sends one beat to reset the player's clock, then no more.
    c.send(&player.voucher(alice, owed)).await?;
    let mut beats = Vec::new();
    let mut acked = false;
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(600);
    while tokio::time::Instant::now() < until {
        match c.event_within(1).await? {
            Event::Frame(ServerFrame::Ack { cumulative, .. }) => {
                assert_eq!(cumulative, owed.to_string());
                acked = true;
            }
            Event::Frame(ServerFrame::Beat { second, .. }) => beats.push(second),
            Event::Frame(ServerFrame::Paused { .. }) if acked && !beats.is_empty() => {}
            Event::Frame(other) => eyre::bail!("unexpected {other:?}"),
            Event::Closed(c) => eyre::bail!("closed: {c:?}"),
        }
        if acked && !beats.is_empty() {
            break;
        }
    }
    assert!(acked, "the catch-up voucher is acked");
    assert_eq!(beats, vec![second + 1], "the resume sends the next beat once");
    c.send(&ClientFrame::Stop { session_id: session.clone() }).await?;
    match c.recv_no_beat().await? {
        ServerFrame::Closed { total, .. } => assert_eq!(total, owed.to_string()),
        other => eyre::bail!("expected closed, got {other:?}"),
    }
    relay.stop().await
}
