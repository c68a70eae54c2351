//! Splits and tips (contracts v3): the payee a play names follows the vault's `playPayee`, and a tip is checked,
//! stored before its `tipAck`, counted against the listener's funds and the grant's cap, and refused with stable
//! codes.

use alloy::primitives::{Address, U256, keccak256};
use beatstream_primitives::eip712;
use beatstream_stream_relay::protocol::{ClientFrame, ServerFrame, Uint};
use beatstream_testkit::TestDb;
use sqlx::PgPool;

use crate::harness::*;

/// Plays `track` and returns the `session` frame's payee.
async fn payee_of(c: &mut Client, track: u64) -> eyre::Result<Address> {
    c.send(&ClientFrame::Play { track_id: Uint(track.to_string()), from: None, beats: None })
        .await?;
    match c.recv_no_beat().await? {
        ServerFrame::Session { payee, .. } => Ok(payee.parse()?),
        other => eyre::bail!("expected session, got {other:?}"),
    }
}

#[tokio::test]
async fn a_play_pays_the_tracks_split_else_the_artists_split_else_its_addr() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    // Track 1 has a split of its own (version 2 in force), and alice an artist-wide split; bob has none.
    let track_split = Address::repeat_byte(0x51);
    let artist_split = Address::repeat_byte(0x52);
    seed_split(db.pool(), &scene.alice, 1, 1, Address::repeat_byte(0x50)).await?;
    seed_split(db.pool(), &scene.alice, 1, 2, track_split).await?;
    seed_split(db.pool(), &scene.alice, 0, 1, artist_split).await?;
    let player = Player::new(1_000_000);
    seed_listener(db.pool(), player.listener(), 1_000_000, 0).await?;
    let relay = Relay::start(config(&db, no_rpc())).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&player).await?;

    assert_eq!(payee_of(&mut c, 1).await?, track_split, "the track's split in force");
    assert_eq!(payee_of(&mut c, 2).await?, artist_split, "no track split: the artist's");
    assert_eq!(payee_of(&mut c, 3).await?, scene.bob.payee, "no split at all: the addr record");
    // Vouchers name the split payee and are stored under it like any payee.
    c.pay(&player, track_split, 100).await?;
    assert_eq!(
        stored_voucher(db.pool(), player.grant_id(), track_split).await?.unwrap().0,
        U256::from(100)
    );
    relay.stop().await
}

/// The stored tip: (payee, amount, message bytes, signature).
async fn stored_tip(
    pool: &PgPool,
    player: &Player,
    tip_id: u64,
) -> eyre::Result<Option<(Vec<u8>, String, Vec<u8>, Vec<u8>)>> {
    Ok(sqlx::query_as(
        "SELECT payee, amount::text, message, signature FROM tips WHERE grant_id = $1 AND tip_id = $2::numeric",
    )
    .bind(player.grant_id().as_slice())
    .bind(tip_id.to_string())
    .fetch_optional(pool)
    .await?)
}

async fn tip_count(pool: &PgPool) -> eyre::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM tips").fetch_one(pool).await?)
}

async fn expect_tip_ack(c: &mut Client, player: &Player, tip_id: u64) -> eyre::Result<()> {
    match c.recv_no_beat().await? {
        ServerFrame::TipAck { grant_id, tip_id: got } => {
            assert_eq!((grant_id, got), (player.grant_id().to_string(), tip_id.to_string()));
            Ok(())
        }
        other => eyre::bail!("expected tipAck, got {other:?}"),
    }
}

#[tokio::test]
async fn a_tip_is_stored_as_given_before_its_ack_and_counted_against_funds() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let player = Player::new(1_000_000);
    seed_listener(db.pool(), player.listener(), 100_000, 0).await?;
    let relay = Relay::start(config(&db, no_rpc())).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&player).await?;

    // Markup, quotes, multi-byte UTF-8 and a NUL are stored byte for byte: the relay never interprets a message.
    let message = "<script>alert(\"hi\")</script> merci ♥ 🎶 \u{0}";
    c.send(&player.tip(scene.alice.payee, 1, 60_000, message)).await?;
    expect_tip_ack(&mut c, &player, 1).await?;
    let (payee, amount, stored, sig) = stored_tip(db.pool(), &player, 1).await?.unwrap();
    assert_eq!((payee, amount.as_str()), (scene.alice.payee.to_vec(), "60000"));
    assert_eq!(stored, message.as_bytes());
    let digest = domain().tip_digest(
        player.grant_id(),
        scene.alice.payee,
        U256::from(1),
        U256::from(60_000),
        &stored,
    );
    assert_eq!(eip712::recover(digest, &sig)?, player.key.address());

    // The same tip again (its tipAck lost) is acked again and stored once; another tip under its id is refused.
    c.send(&player.tip(scene.alice.payee, 1, 60_000, message)).await?;
    expect_tip_ack(&mut c, &player, 1).await?;
    c.send(&player.tip(scene.alice.payee, 1, 60_000, "another message")).await?;
    c.expect_error("duplicate_tip").await?;
    assert_eq!(tip_count(db.pool()).await?, 1);

    // The unsettled tip is owed: what is left is 40,000, for tips and vouchers alike, on any connection.
    c.send(&player.tip(scene.alice.payee, 2, 40_001, "")).await?;
    c.expect_error("insufficient_funds").await?;
    let (session, _) = c.play(1).await?;
    assert_eq!(c.pay(&player, scene.alice.payee, 100).await?, session);
    let mut other = Client::connect(&relay).await?;
    assert_eq!(other.hello(&player).await?, U256::from(100_000 - 60_000 - 100));
    // A tip with an empty message to the other artist fits in what is left.
    c.send(&player.tip(scene.bob.payee, 2, 39_900, "")).await?;
    expect_tip_ack(&mut c, &player, 2).await?;
    assert_eq!(stored_tip(db.pool(), &player, 2).await?.unwrap().2, Vec::<u8>::new());

    // Once the indexer mirrors the tip's settlement (Tipped, and the funds it took), it is no longer owed.
    sqlx::query(
        "INSERT INTO vault_tips (chain_id, block_number, block_hash, block_time, tx_hash, log_index, grant_id,
                                 listener, payee, tip_id, amount, fee, message)
         VALUES ($1, 3, $2, now(), $2, 0, $3, $4, $5, 1, 60000, 0, $6)",
    )
    .bind(CHAIN_ID as i64)
    .bind(keccak256(b"block 3").as_slice())
    .bind(player.grant_id().as_slice())
    .bind(player.listener().as_slice())
    .bind(scene.alice.payee.as_slice())
    .bind(message.as_bytes())
    .execute(db.pool())
    .await?;
    sqlx::query(
        "UPDATE listener_accounts SET available = available + 1000 - 60000 WHERE listener = $1",
    )
    .bind(player.listener().as_slice())
    .execute(db.pool())
    .await?;
    let mut third = Client::connect(&relay).await?;
    // 41,000 available, owing the voucher (100) and tip 2 (39,900).
    assert_eq!(third.hello(&player).await?, U256::from(1_000));
    relay.stop().await
}

#[tokio::test]
async fn bad_tips_get_stable_codes_and_change_nothing() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let player = Player::new(50_000);
    seed_listener(db.pool(), player.listener(), 1_000_000, 0).await?;
    let relay = Relay::start(config(&db, no_rpc())).await?;
    let mut c = Client::connect(&relay).await?;

    // Before hello.
    c.send(&player.tip(scene.alice.payee, 1, 1_000, "hi")).await?;
    c.expect_error("hello_required").await?;
    c.hello(&player).await?;

    // Longer than the vault settles: 281 bytes (141 two-byte characters); 280 is fine.
    c.send(&player.tip(scene.alice.payee, 1, 1_000, &"é".repeat(141))).await?;
    assert!(c.expect_error("message_too_long").await?.contains("282"));
    c.send(&player.tip(scene.alice.payee, 1, 1_000, &"é".repeat(140))).await?;
    expect_tip_ack(&mut c, &player, 1).await?;

    // Above the grant's cap, at once or with what the grant already spent.
    c.send(&player.tip(scene.alice.payee, 2, 50_001, "")).await?;
    c.expect_error("cap_exceeded").await?;
    c.send(&player.tip(scene.alice.payee, 2, 49_001, "")).await?;
    c.expect_error("cap_exceeded").await?;

    // Nobody's payee; zero; signed for another amount; under another grant; a field that does not parse.
    c.send(&player.tip(Address::repeat_byte(0x77), 3, 1_000, "")).await?;
    c.expect_error("unknown_payee").await?;
    c.send(&player.tip(scene.alice.payee, 3, 0, "")).await?;
    c.expect_error("invalid_field").await?;
    let signed_for_one = player.tip(scene.alice.payee, 3, 1, "");
    let ClientFrame::Tip { grant_id, payee, tip_id, message, sig, .. } = signed_for_one else {
        unreachable!()
    };
    let forged = ClientFrame::Tip {
        grant_id: grant_id.clone(),
        payee: payee.clone(),
        tip_id: tip_id.clone(),
        amount: "1000".into(),
        message: message.clone(),
        sig: sig.clone(),
    };
    c.send(&forged).await?;
    c.expect_error("wrong_signer").await?;
    let stranger = Player::new(50_000);
    c.send(&stranger.tip(scene.alice.payee, 3, 1_000, "")).await?;
    c.expect_error("wrong_grant").await?;
    c.send_text(&format!(
        r#"{{"type":"tip","grantId":"{grant_id}","payee":"{payee}","tipId":"x","amount":"1","message":"","sig":"{sig}"}}"#
    ))
    .await?;
    c.expect_error("invalid_field").await?;

    assert_eq!(tip_count(db.pool()).await?, 1, "only the one tip acked is stored");
    relay.stop().await
}

#[tokio::test]
async fn a_tip_under_a_revoked_grant_is_refused() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let player = Player::new(50_000);
    seed_listener(db.pool(), player.listener(), 1_000_000, 0).await?;
    let relay = Relay::start(config(&db, no_rpc())).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&player).await?;
    seed_revocation(db.pool(), player.listener(), player.grant_id()).await?;
    c.send(&player.tip(scene.alice.payee, 1, 1_000, "hi")).await?;
    c.expect_error("grant_revoked").await?;
    assert_eq!(tip_count(db.pool()).await?, 0);
    relay.stop().await
}
