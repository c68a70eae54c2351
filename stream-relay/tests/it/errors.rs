//! Every error code, provoked through the socket: each gets an `error` frame, changes nothing, and the connection
//! goes on working.

use alloy::{
    primitives::{Address, U256},
    signers::local::PrivateKeySigner,
};
use beatstream_primitives::VoucherDomain;
use beatstream_stream_relay::{
    CLIENT_CODES,
    protocol::{ClientFrame, Uint},
};
use beatstream_testkit::{Anvil, TestDb};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::*;

/// Tests here count errors, not abuse: raise the abuse limit.
fn lenient(db: &TestDb, rpc: url::Url) -> beatstream_stream_relay::Config {
    let mut c = config(db, rpc);
    c.options.max_errors = 1000;
    // One beat a minute: `owed` stays put while a test probes it.
    c.options.beat_ms = 60_000;
    c
}

fn play(track: u64) -> ClientFrame {
    ClientFrame::Play { track_id: Uint(track.to_string()), from: None, beats: None }
}

#[tokio::test]
async fn bad_frames_get_errors_and_the_connection_survives() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    seed_scene(db.pool()).await?;
    let player = Player::new(1_000_000);
    seed_listener(db.pool(), player.listener(), 1_000_000, 0).await?;
    let relay = Relay::start(lenient(&db, no_rpc())).await?;
    let mut c = Client::connect(&relay).await?;

    c.send_text("{not json").await?;
    c.expect_error("malformed_frame").await?;
    c.send_text(r#"{"no":"type"}"#).await?;
    c.expect_error("malformed_frame").await?;
    c.send_message(Message::binary(vec![1u8, 2, 3])).await?;
    c.expect_error("malformed_frame").await?;
    c.send_text(r#"{"type":"subscribe","channel":"all"}"#).await?;
    c.expect_error("unknown_type").await?;
    c.send_text(r#"{"type":"play","trackId":"one"}"#).await?;
    c.expect_error("invalid_field").await?;
    c.send_text(
        r#"{"type":"voucher","grantId":"0x12","payee":"0x00","cumulative":"1","sig":"0x"}"#,
    )
    .await?;
    c.expect_error("invalid_field").await?;
    let big = format!(r#"{{"type":"play","trackId":"1","pad":"{}"}}"#, "x".repeat(20_000));
    c.send_text(&big).await?;
    let msg = c.expect_error("frame_too_large").await?;
    assert!(msg.contains("16384"), "{msg}");
    c.send(&play(1)).await?;
    c.expect_error("hello_required").await?;
    c.send(&ClientFrame::Stop { session_id: uuid_string() }).await?;
    c.expect_error("hello_required").await?;
    c.send(&player.voucher(Address::repeat_byte(1), 1)).await?;
    c.expect_error("hello_required").await?;

    // Still the same healthy connection.
    c.hello(&player).await?;
    c.play(1).await?;
    relay.stop().await
}

#[tokio::test]
async fn grant_errors() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    seed_scene(db.pool()).await?;
    let relay = Relay::start(lenient(&db, no_rpc())).await?;
    let mut c = Client::connect(&relay).await?;
    let d = domain();

    // Zero session key.
    let mut p = Player::new(1_000);
    p.grant.sessionKey = Address::ZERO;
    c.send(&p.hello()).await?;
    c.expect_error("invalid_grant").await?;
    // Zero cap.
    let mut p = Player::new(1_000);
    p.grant.cap = U256::ZERO;
    c.send(&p.hello()).await?;
    c.expect_error("invalid_grant").await?;

    // Expired, though properly signed.
    let mut p = Player::new(1_000);
    p.grant.expiresAt = unix_now() - 1;
    c.send(&p.hello()).await?;
    c.expect_error("grant_expired").await?;

    // Signed by someone else: the EOA check fails, and the chain cannot be asked whether the listener is a
    // contract wallet.
    let p = Player::new(1_000);
    let sig = d.sign_grant(&PrivateKeySigner::random(), &p.grant)?;
    c.send(&ClientFrame::hello(&p.grant, &sig)).await?;
    c.expect_error("chain_unavailable").await?;

    // Nothing deposited.
    let p = Player::new(1_000);
    c.send(&p.hello()).await?;
    let msg = c.expect_error("insufficient_funds").await?;
    assert!(msg.contains("0 available"), "{msg}");

    // Funded: accepted; a second hello is refused and the first grant stays.
    seed_listener(db.pool(), p.listener(), 5_000, 0).await?;
    assert_eq!(c.hello(&p).await?, U256::from(5_000));
    let other = Player::new(1_000);
    c.send(&other.hello()).await?;
    c.expect_error("duplicate_hello").await?;
    c.play(1).await?;
    // Only the accepted grant was recorded.
    let grants: i64 =
        sqlx::query_scalar("SELECT count(*) FROM grants").fetch_one(db.pool()).await?;
    assert_eq!(grants, 1, "one grant, verified and recorded (also while unfunded)");
    relay.stop().await
}

#[tokio::test]
async fn bad_grant_signature_is_refused_after_asking_the_chain() -> eyre::Result<()> {
    let anvil = Anvil::spawn()?;
    let db = TestDb::new().await?;
    seed_scene(db.pool()).await?;
    let relay = Relay::start(lenient(&db, anvil.endpoint_url())).await?;
    let mut c = Client::connect(&relay).await?;
    let p = Player::new(1_000);
    seed_listener(db.pool(), p.listener(), 5_000, 0).await?;

    // Another wallet's signature; the listener has no code, so no ERC-1271 either.
    let sig = domain().sign_grant(&PrivateKeySigner::random(), &p.grant)?;
    c.send(&ClientFrame::hello(&p.grant, &sig)).await?;
    c.expect_error("bad_grant_signature").await?;
    // The listener's own signature for another chain, and for another vault.
    for other in
        [VoucherDomain::new(1, vault()), VoucherDomain::new(CHAIN_ID, Address::repeat_byte(0xbb))]
    {
        let sig = other.sign_grant(&p.wallet, &p.grant)?;
        c.send(&ClientFrame::hello(&p.grant, &sig)).await?;
        c.expect_error("bad_grant_signature").await?;
    }
    // Its high-s twin.
    let sig = malleable_twin(domain().sign_grant(&p.wallet, &p.grant)?);
    c.send(&ClientFrame::hello(&p.grant, &sig)).await?;
    c.expect_error("bad_grant_signature").await?;
    let grants: i64 =
        sqlx::query_scalar("SELECT count(*) FROM grants").fetch_one(db.pool()).await?;
    assert_eq!(grants, 0);

    assert_eq!(c.hello(&p).await?, U256::from(5_000));
    relay.stop().await
}

#[tokio::test]
async fn session_errors() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    // Unpublished track 4, and track 5 by an artist without an addr record.
    seed_track(db.pool(), 4, &scene.alice, 60, 0).await?;
    sqlx::query("UPDATE tracks SET published = false WHERE track_id = 4")
        .execute(db.pool())
        .await?;
    let nobody = seed_artist(db.pool(), "nobody", Address::repeat_byte(0xcc), 10).await?;
    sqlx::query("UPDATE artists SET addr = NULL WHERE label = 'nobody'").execute(db.pool()).await?;
    seed_track(db.pool(), 5, &nobody, 60, 0).await?;

    let mut cfg = lenient(&db, no_rpc());
    cfg.options.max_sessions = 1;
    let relay = Relay::start(cfg).await?;
    let p = Player::new(1_000_000);
    seed_listener(db.pool(), p.listener(), 1_000_000, 0).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&p).await?;

    for track in [99, 4, 5] {
        c.send(&play(track)).await?;
        c.expect_error("unknown_track").await?;
    }
    c.send(&ClientFrame::Stop { session_id: uuid_string() }).await?;
    c.expect_error("unknown_session").await?;
    // A voucher for an artist with no session.
    c.send(&p.voucher(scene.alice.payee, 100)).await?;
    c.expect_error("unknown_session").await?;

    let (session, _) = c.play(1).await?;
    c.send(&play(3)).await?;
    c.expect_error("too_many_sessions").await?;
    let sessions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sessions").fetch_one(db.pool()).await?;
    assert_eq!(sessions, 1);
    // The live session is untouched.
    c.pay(&p, scene.alice.payee, 100).await?;
    c.send(&ClientFrame::Stop { session_id: session }).await?;
    c.recv_until(|f| matches!(f, beatstream_stream_relay::protocol::ServerFrame::Closed { .. }))
        .await?;
    relay.stop().await
}

#[tokio::test]
async fn voucher_errors_change_nothing() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let relay = Relay::start(lenient(&db, no_rpc())).await?;
    let p = Player::new(1_000_000);
    seed_listener(db.pool(), p.listener(), 1_000_000, 0).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&p).await?;
    let (_, owed) = c.play(1).await?;
    assert_eq!(owed, U256::from(100));
    let alice = scene.alice.payee;
    let gid = p.grant_id();
    let d = domain();

    // Another grant's id.
    let other = Player::new(1_000_000);
    c.send(&other.voucher(alice, 100)).await?;
    c.expect_error("wrong_grant").await?;
    // Malformed signatures.
    let good = p.voucher_sig(alice, 100);
    c.send(&ClientFrame::voucher(gid, alice, U256::from(100), &good[..64])).await?;
    c.expect_error("invalid_signature").await?;
    let mut bad_v = good;
    bad_v[64] = 29;
    c.send(&ClientFrame::voucher(gid, alice, U256::from(100), &bad_v)).await?;
    c.expect_error("invalid_signature").await?;
    let mut zero = [0u8; 65];
    zero[64] = 27;
    c.send(&ClientFrame::voucher(gid, alice, U256::from(100), &zero)).await?;
    c.expect_error("invalid_signature").await?;
    // The malleable twin of a valid signature.
    c.send(&ClientFrame::voucher(gid, alice, U256::from(100), &malleable_twin(good))).await?;
    c.expect_error("malleable_signature").await?;
    // Signed by the wallet instead of the session key; by the key for another chain; for another vault.
    let by_wallet = d.sign_voucher(&p.wallet, gid, alice, U256::from(100))?;
    let other_chain =
        VoucherDomain::new(1, vault()).sign_voucher(&p.key, gid, alice, U256::from(100))?;
    let other_vault = VoucherDomain::new(CHAIN_ID, Address::repeat_byte(0xbb)).sign_voucher(
        &p.key,
        gid,
        alice,
        U256::from(100),
    )?;
    for sig in [by_wallet, other_chain, other_vault] {
        c.send(&ClientFrame::voucher(gid, alice, U256::from(100), &sig)).await?;
        c.expect_error("wrong_signer").await?;
    }
    // A valid signature over another amount than the frame claims.
    c.send(&ClientFrame::voucher(gid, alice, U256::from(150), &good)).await?;
    c.expect_error("wrong_signer").await?;
    // More than owed plus one beat.
    c.send(&p.voucher(alice, 201)).await?;
    c.expect_error("exceeds_owed").await?;
    assert!(stored_voucher(db.pool(), gid, alice).await?.is_none(), "nothing stored yet");

    c.pay(&p, alice, 100).await?;
    // Replayed and decreasing.
    c.send(&p.voucher(alice, 100)).await?;
    c.expect_error("stale_voucher").await?;
    c.send(&p.voucher(alice, 50)).await?;
    c.expect_error("stale_voucher").await?;
    // One beat ahead is fine.
    c.pay(&p, alice, 200).await?;
    assert_eq!(stored_voucher(db.pool(), gid, alice).await?.unwrap().0, U256::from(200));
    relay.stop().await
}

#[tokio::test]
async fn cap_and_funds_bound_what_is_stored() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let relay = Relay::start(lenient(&db, no_rpc())).await?;
    let alice = scene.alice.payee;

    // Cap 150: the second beat's voucher would pass it.
    let p = Player::new(150);
    seed_listener(db.pool(), p.listener(), 1_000_000, 0).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&p).await?;
    c.play(1).await?;
    c.pay(&p, alice, 100).await?;
    c.send(&p.voucher(alice, 200)).await?;
    c.expect_error("cap_exceeded").await?;
    c.pay(&p, alice, 150).await?;

    // Funds 150 available (and 50 thawing, which back no new voucher): the relay accepts the voucher up to the
    // available funds, the writer refuses beyond.
    let q = Player::new(1_000_000);
    seed_listener(db.pool(), q.listener(), 150, 50).await?;
    let mut d = Client::connect(&relay).await?;
    assert_eq!(d.hello(&q).await?, U256::from(150));
    d.play(1).await?;
    d.pay(&q, alice, 100).await?;
    d.send(&q.voucher(alice, 200)).await?;
    let msg = d.expect_error("insufficient_funds").await?;
    assert!(msg.contains("50 available"), "{msg}");
    d.pay(&q, alice, 150).await?;
    assert_eq!(stored_total(db.pool(), q.listener()).await?, U256::from(150));
    relay.stop().await
}

#[tokio::test]
async fn storage_failure_is_reported_and_nothing_is_acked() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let relay = Relay::start(lenient(&db, no_rpc())).await?;
    let p = Player::new(1_000_000);
    seed_listener(db.pool(), p.listener(), 1_000_000, 0).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&p).await?;
    c.play(1).await?;

    // Make every voucher write fail.
    sqlx::query("ALTER TABLE vouchers ADD CONSTRAINT test_refuse CHECK (cumulative < 0) NOT VALID")
        .execute(db.pool())
        .await?;
    c.send(&p.voucher(scene.alice.payee, 100)).await?;
    c.expect_error("storage_unavailable").await?;
    assert!(stored_voucher(db.pool(), p.grant_id(), scene.alice.payee).await?.is_none());

    // Once storage is back, the same voucher goes through.
    sqlx::query("ALTER TABLE vouchers DROP CONSTRAINT test_refuse").execute(db.pool()).await?;
    c.pay(&p, scene.alice.payee, 100).await?;
    relay.stop().await
}

#[test]
fn every_client_code_is_in_the_protocol_document() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
        .unwrap();
    for code in CLIENT_CODES {
        assert!(
            doc.contains(&format!("| `{code}` |")),
            "{code} is missing from the error table of docs/PROTOCOL.md"
        );
    }
}

/// The high-s twin of a valid signature: (r, n - s) with v flipped.
pub(crate) fn malleable_twin(sig: [u8; 65]) -> [u8; 65] {
    let n = U256::from_str_radix(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        16,
    )
    .unwrap();
    let s = U256::from_be_slice(&sig[32..64]);
    let mut twin = sig;
    twin[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    twin[64] = if sig[64] == 27 { 28 } else { 27 };
    twin
}

fn uuid_string() -> String {
    "6f1c1e4a-3b7d-4c2e-9a0b-5d8e7f6a4b3c".to_owned()
}
