//! A relay killed with sessions open, restarted with its default id (host name and port, no `--relay-id`), closes
//! them at start: nobody is left with a session that no relay serves. A relay on another port leaves them alone.

use beatstream_stream_relay::default_relay_id;
use beatstream_testkit::TestDb;

use crate::{
    durability::{ChildRelay, wait_for_killed_commits},
    harness::*,
};

/// The status, close reason and relay of session `id`.
async fn session(db: &TestDb, id: &str) -> eyre::Result<(String, Option<String>, String)> {
    Ok(sqlx::query_as(
        "SELECT status, close_reason, relay_id FROM sessions WHERE session_id = $1::uuid",
    )
    .bind(id)
    .fetch_one(db.pool())
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_relay_closes_the_sessions_its_killed_run_left_open() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    seed_scene(db.pool()).await?;
    let player = Player::new(1_000_000_000);
    seed_listener(db.pool(), player.listener(), 1_000_000_000, 0).await?;
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;

    let mut relay = ChildRelay::spawn_on(&db, addr, "default-id").await?;
    let mut client = Client::connect_url(&relay.as_relay().url()).await?;
    client.hello(&player).await?;
    let (id, _) = client.play(1).await?;
    let (status, _, relay_id) = session(&db, &id).await?;
    assert_eq!(status, "live");
    assert_eq!(relay_id, default_relay_id(addr.port()), "not the default id");

    // Killed: the session stays live in the database, served by nobody.
    relay.child.kill()?;
    relay.child.wait()?;
    drop(client);
    wait_for_killed_commits(&db).await?;
    assert_eq!(session(&db, &id).await?.0, "live");

    // Another relay (another port, so another id) starting does not touch it.
    let other = ChildRelay::spawn_with(&db, "default-id").await?;
    assert_eq!(session(&db, &id).await?.0, "live", "a relay closed another relay's session");
    drop(other);

    // The same relay again: it closes what its previous run left open before it listens.
    let _again = ChildRelay::spawn_on(&db, addr, "default-id").await?;
    let (status, reason, _) = session(&db, &id).await?;
    assert_eq!(status, "closed");
    assert_eq!(reason.as_deref(), Some("relay_restart"));
    Ok(())
}
