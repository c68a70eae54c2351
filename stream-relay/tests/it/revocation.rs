//! Revoked grants: refused at `hello` and at the next voucher's commit (`grant_revoked`, not abuse), by id and by
//! nonce floor, with the indexer's rows inserted directly; and, on anvil with the real contracts and the real
//! indexer, a grant revoked on-chain mid-stream whose acked vouchers still settle.

use alloy::primitives::{Address, U256};
use beatstream_stream_relay::protocol::{ClientFrame, ServerFrame, Uint};
use beatstream_testkit::TestDb;

use crate::harness::*;

fn play(track: u64) -> ClientFrame {
    ClientFrame::Play { track_id: Uint(track.to_string()), from: None, beats: None }
}

/// Default limits (ten abuse errors close a connection), one beat a minute so `owed` stays put.
fn slow_beats(db: &TestDb) -> beatstream_stream_relay::Config {
    let mut c = config(db, no_rpc());
    c.options.beat_ms = 60_000;
    c
}

async fn grant_rows(db: &TestDb, player: &Player) -> eyre::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM grants WHERE grant_id = $1")
        .bind(player.grant_id().as_slice())
        .fetch_one(db.pool())
        .await?)
}

#[tokio::test]
async fn a_revoked_grant_is_refused_at_hello() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    seed_scene(db.pool()).await?;
    let relay = Relay::start(slow_beats(&db)).await?;

    // By id: refused, and not recorded.
    let p = Player::with_nonce(alloy::signers::local::PrivateKeySigner::random(), 1_000_000, 1);
    seed_listener(db.pool(), p.listener(), 1_000_000, 0).await?;
    seed_revocation(db.pool(), p.listener(), p.grant_id()).await?;
    let mut c = Client::connect(&relay).await?;
    c.send(&p.hello()).await?;
    let msg = c.expect_error("grant_revoked").await?;
    assert!(msg.contains("revoked this grant"), "{msg}");
    assert_eq!(grant_rows(&db, &p).await?, 0, "a revoked grant is not recorded");
    // The connection has no grant yet: another grant of the listener is welcome on it.
    let other = Player::with_nonce(p.wallet.clone(), 1_000_000, 2);
    assert_eq!(c.hello(&other).await?, U256::from(1_000_000));

    // A revocation of the same grant id by another address is not its listener's, so it counts for nothing.
    let q = Player::new(1_000_000);
    seed_listener(db.pool(), q.listener(), 1_000, 0).await?;
    seed_revocation(db.pool(), Address::repeat_byte(0x77), q.grant_id()).await?;
    let mut c = Client::connect(&relay).await?;
    assert_eq!(c.hello(&q).await?, U256::from(1_000));

    // By nonce floor: grants below the newest floor are refused at once, though the vault applies it only from
    // floor_from (a day later, the previous floor 3 until then); a grant at the floor is not revoked.
    let wallet = alloy::signers::local::PrivateKeySigner::random();
    seed_listener(db.pool(), wallet.address(), 5_000, 0).await?;
    seed_nonce_floor(db.pool(), wallet.address(), 10, 3).await?;
    for nonce in [0, 3, 9] {
        let below = Player::with_nonce(wallet.clone(), 1_000_000, nonce);
        let mut c = Client::connect(&relay).await?;
        c.send(&below.hello()).await?;
        let msg = c.expect_error("grant_revoked").await?;
        assert!(msg.contains("nonce below 10"), "{msg}");
        assert_eq!(grant_rows(&db, &below).await?, 0);
    }
    for nonce in [10, u64::MAX] {
        let mut c = Client::connect(&relay).await?;
        assert_eq!(
            c.hello(&Player::with_nonce(wallet.clone(), 1_000_000, nonce)).await?,
            U256::from(5_000)
        );
    }

    // Revocation is checked before funds: a revoked grant of a listener with no funds says it is revoked.
    let broke = Player::new(1_000_000);
    seed_revocation(db.pool(), broke.listener(), broke.grant_id()).await?;
    let mut c = Client::connect(&relay).await?;
    c.send(&broke.hello()).await?;
    c.expect_error("grant_revoked").await?;
    relay.stop().await
}

/// How a test revokes the grant.
#[derive(Clone, Copy, Debug)]
enum Revoke {
    ById,
    ByNonceFloor,
}

#[tokio::test]
async fn a_grant_revoked_by_id_while_streaming_stops_its_next_voucher() -> eyre::Result<()> {
    revoked_while_streaming(Revoke::ById, 10_000).await
}

#[tokio::test]
async fn a_grant_revoked_by_nonce_floor_while_streaming_stops_its_next_voucher() -> eyre::Result<()>
{
    revoked_while_streaming(Revoke::ByNonceFloor, 10_000).await
}

/// With funds too low for a lease, every voucher is decided on state read under the lock; the revocation stops the
/// next one all the same.
#[tokio::test]
async fn a_grant_revoked_by_id_on_low_funds_stops_its_next_voucher() -> eyre::Result<()> {
    revoked_while_streaming(Revoke::ById, 1_000).await
}

#[tokio::test]
async fn a_grant_revoked_by_nonce_floor_on_low_funds_stops_its_next_voucher() -> eyre::Result<()> {
    revoked_while_streaming(Revoke::ByNonceFloor, 1_000).await
}

/// A connection streams two artists under one grant; the indexer's mirror of a revocation appears; the next
/// voucher is refused in the commit, both sessions close with reason `grant_revoked`, later frames under the grant
/// are refused without counting as abuse, and the acked vouchers stay stored and owed. With `funds` of 10,000 the
/// relay holds a lease for the grant when the revocation lands, so the voucher after it is within the lease and
/// decided without a read: the revocation stops it because it raised the listener's guard epoch.
async fn revoked_while_streaming(how: Revoke, funds: u64) -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let (alice, bob) = (scene.alice.payee, scene.bob.payee);
    let relay = Relay::start(slow_beats(&db)).await?;
    let wallet = alloy::signers::local::PrivateKeySigner::random();
    let p = Player::with_nonce(wallet.clone(), 1_000_000, 5);
    seed_listener(db.pool(), p.listener(), funds, 0).await?;

    let mut c = Client::connect(&relay).await?;
    c.hello(&p).await?;
    let (alice_session, _) = c.play(1).await?;
    c.pay(&p, alice, 100).await?;
    let (bob_session, _) = c.play(3).await?;
    c.pay(&p, bob, 50).await?;
    let leased: Option<String> =
        sqlx::query_scalar("SELECT amount::text FROM relay_leases WHERE grant_id = $1")
            .bind(p.grant_id().as_slice())
            .fetch_optional(db.pool())
            .await?;
    // The last voucher (50) sized the lease: 59 × 50 more.
    let expected = (funds >= 10_000).then(|| "2950".to_owned());
    assert_eq!(leased, expected, "a lease only with funds enough");

    match how {
        Revoke::ById => seed_revocation(db.pool(), p.listener(), p.grant_id()).await?,
        Revoke::ByNonceFloor => seed_nonce_floor(db.pool(), p.listener(), 6, 0).await?,
    }
    // Within what the connection allows (one beat ahead), so only the commit can refuse it; on bob's pair, whose
    // voucher took the lease, so with funds of 10,000 it is within the lease and needs no read.
    c.send(&p.voucher(bob, 100)).await?;
    let msg = c.expect_error("grant_revoked").await?;
    match how {
        Revoke::ById => assert!(msg.contains("revoked this grant"), "{msg}"),
        Revoke::ByNonceFloor => assert!(msg.contains("nonce below 6"), "{msg}"),
    }
    // Both sessions under the grant end, each reporting what its acked vouchers paid.
    let mut closed = Vec::new();
    while closed.len() < 2 {
        if let ServerFrame::Closed { session_id, total } =
            c.recv_until(|f| matches!(f, ServerFrame::Closed { .. })).await?
        {
            closed.push((session_id, total));
        }
    }
    closed.sort();
    let mut expected =
        vec![(alice_session.clone(), "100".to_owned()), (bob_session.clone(), "50".to_owned())];
    expected.sort();
    assert_eq!(closed, expected);
    for session in [&alice_session, &bob_session] {
        let (status, reason): (String, Option<String>) =
            sqlx::query_as("SELECT status, close_reason FROM sessions WHERE session_id = $1::uuid")
                .bind(session)
                .fetch_one(db.pool())
                .await?;
        assert_eq!((status.as_str(), reason.as_deref()), ("closed", Some("grant_revoked")));
    }

    // Acked vouchers stay stored for the keeper; the refused one was not.
    assert_eq!(stored_voucher(db.pool(), p.grant_id(), alice).await?.unwrap().0, U256::from(100));
    assert_eq!(stored_voucher(db.pool(), p.grant_id(), bob).await?.unwrap().0, U256::from(50));

    // Everything further under the grant is refused, and never counted as abuse: more refusals than the abuse
    // limit (10) leave the connection open.
    for _ in 0..6 {
        c.send(&play(1)).await?;
        c.expect_error("grant_revoked").await?;
        c.send(&p.voucher(bob, 100)).await?;
        c.expect_error("grant_revoked").await?;
    }
    c.send(&play(3)).await?;
    c.expect_error("grant_revoked").await?;
    assert_eq!(stored_voucher(db.pool(), p.grant_id(), bob).await?.unwrap().0, U256::from(50));

    // A new connection cannot bring the grant back.
    let mut d = Client::connect(&relay).await?;
    d.send(&p.hello()).await?;
    d.expect_error("grant_revoked").await?;

    // A fresh grant of the listener (above the floor) streams on; what the revoked grant's acked vouchers owe still
    // counts against the listener's funds until they settle.
    let fresh = Player::with_nonce(wallet, 1_000_000, 6);
    let mut e = Client::connect(&relay).await?;
    assert_eq!(e.hello(&fresh).await?, U256::from(funds - 150));
    e.play(1).await?;
    e.pay(&fresh, alice, 100).await?;
    relay.stop().await
}

/// The test, every part real: a listener streams over the relay on anvil with the real contracts and the
/// real indexer, gets acks, revokes the grant on-chain; once the indexer has mirrored the revocation the next voucher
/// is refused with `grant_revoked`, and the acked vouchers, read back from the relay's `vouchers` rows as the keeper
/// reads them, settle in full before the revocation takes effect in the vault. After it has, the vault refuses more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_revoked_on_chain_stops_the_relay_and_its_acked_vouchers_still_settle()
-> eyre::Result<()> {
    use std::time::Duration;

    use alloy::primitives::{B256, Bytes, keccak256};
    use beatstream_primitives::{
        SessionGrant,
        contracts::{BeatStreamRegistry::TrackInput, BeatStreamVault},
    };
    use beatstream_testkit::{
        Anvil,
        scene::{self, Chain, USDC},
    };

    const DELAY: u64 = 3_600;
    const RATE: u64 = 2_500;
    const LISTENER: usize = 3;
    const KEEPER: usize = 7;

    let chain = Chain::with(
        Anvil::spawn()?,
        &[("BEATSTREAM_FEE_BPS", "250"), ("BEATSTREAM_WITHDRAWAL_DELAY", &DELAY.to_string())],
    )
    .await?;
    let db = TestDb::new().await?;
    let deployment = chain.deployment_file.path().to_owned();

    // The real indexer follows the chain into the relay's database.
    let indexer_metrics = beatstream_indexer::Metrics::new();
    let indexer_stop = tokio_util::sync::CancellationToken::new();
    let indexer = tokio::spawn(beatstream_indexer::run_with_metrics(
        beatstream_indexer::Config {
            database: beatstream_primitives::db::DatabaseArgs::new(db.url().to_owned()),
            rpc: chain.anvil.endpoint_url().into(),
            options: beatstream_indexer::Options {
                poll_interval_ms: 50,
                ..beatstream_indexer::Options::new(deployment.clone())
            },
        },
        indexer_metrics.clone(),
        indexer_stop.clone(),
    ));
    let indexed = || async {
        let head = chain.head().await? as i64;
        for _ in 0..1_200 {
            eyre::ensure!(!indexer.is_finished(), "the indexer stopped");
            if indexer_metrics.indexed.get() >= head {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eyre::bail!("the indexer did not reach block {head}")
    };

    // An artist with a track; a listener with 20 USDC in the vault.
    let artist = chain.anvil.signer(1);
    let node = chain.register(&artist, "neon", RATE).await?;
    let track = TrackInput {
        title: "Night Drive".into(),
        duration: 600,
        ratePerSecond: 0,
        contentHash: keccak256("Night Drive"),
        metadataURI: "ipfs://night-drive".into(),
    };
    let published =
        chain.registry(&artist).publishTrack(node, track).send().await?.get_receipt().await?;
    eyre::ensure!(published.status(), "publishTrack reverted");
    let listener = chain.anvil.signer(LISTENER);
    chain.fund(&listener, 20 * USDC).await?;
    indexed().await?;

    // The relay reads the chain's id and the vault from the deployment; vouchers are paid on every 100 ms beat.
    let mut cfg =
        beatstream_stream_relay::Config::new(db.url().to_owned(), chain.anvil.endpoint_url());
    cfg.options.listen = "127.0.0.1:0".parse()?;
    cfg.deployment = Some(deployment);
    cfg.options.beat_ms = 100;
    cfg.options.grace_beats = 1_000;
    cfg.options.idle_timeout_secs = 120;
    let relay = Relay::start(cfg).await?;

    let player = scene::Player::new(&chain, listener.clone(), 1).await?;
    let grant_id = player.grant.id();
    let domain = chain.domain();
    let voucher = |payee: Address, cumulative: U256| -> eyre::Result<ClientFrame> {
        let sig = domain.sign_voucher(&player.key, grant_id, payee, cumulative)?;
        Ok(ClientFrame::voucher(grant_id, payee, cumulative, &sig))
    };
    let mut c = Client::connect(&relay).await?;
    c.send(&ClientFrame::hello(&player.grant, &player.grant_sig)).await?;
    match c.recv().await? {
        ServerFrame::Ready { grant_id: id, available } => {
            assert_eq!(id, grant_id.to_string());
            assert_eq!(available, (20 * USDC).to_string());
        }
        other => eyre::bail!("expected ready, got {other:?}"),
    }
    c.send(&play(1)).await?;
    let (session, payee) = match c.recv_no_beat().await? {
        ServerFrame::Session { session_id, payee, .. } => (session_id, payee.parse::<Address>()?),
        other => eyre::bail!("expected session, got {other:?}"),
    };

    // Stream five seconds, each voucher acked.
    let mut acked = U256::ZERO;
    for _ in 0..5 {
        let (_, owed) = c.beat_of(&session).await?;
        c.send(&voucher(payee, owed)?).await?;
        match c
            .recv_until(|f| matches!(f, ServerFrame::Ack { .. } | ServerFrame::Error { .. }))
            .await?
        {
            ServerFrame::Ack { cumulative, .. } if cumulative == owed.to_string() => acked = owed,
            other => eyre::bail!("expected the ack of {owed}, got {other:?}"),
        }
    }
    assert_eq!(acked, U256::from(5 * RATE));

    // The listener revokes the grant on-chain (a lost device); the vault applies it only after the delay.
    let vault = chain.vault(&listener);
    let revoked = vault.revokeGrant(grant_id).send().await?.get_receipt().await?;
    eyre::ensure!(revoked.status(), "revokeGrant reverted");
    let effective_at = vault.grantRevokedAt(listener.address(), grant_id).call().await?;
    assert!(effective_at >= U256::from(chain.now().await? + DELAY), "{effective_at}");

    // The indexer mirrors it (bounded wait: a missing mirror fails here, saying so).
    indexed().await?;
    let mirrored = || async {
        let rows: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM grant_revocations WHERE chain_id = $1 AND grant_id = $2 AND listener = $3",
        )
        .bind(chain.deployment.chain_id as i64)
        .bind(grant_id.as_slice())
        .bind(listener.address().as_slice())
        .fetch_one(db.pool())
        .await?;
        eyre::Ok(rows > 0)
    };
    let mut waited = 0;
    while !mirrored().await? {
        eyre::ensure!(
            waited < 200,
            "the indexer reached the head but did not mirror GrantRevoked into grant_revocations within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }

    // The next voucher (one beat past the last ack, within what the connection allows) is refused in the commit,
    // and the session closes having paid what was acked.
    c.send(&voucher(payee, acked + U256::from(RATE))?).await?;
    match c.recv_until(|f| !matches!(f, ServerFrame::Beat { .. })).await? {
        ServerFrame::Error { code, message } => {
            assert_eq!(code, "grant_revoked", "{message}");
        }
        other => eyre::bail!("expected grant_revoked, got {other:?}"),
    }
    match c.recv_until(|f| matches!(f, ServerFrame::Closed { .. })).await? {
        ServerFrame::Closed { session_id, total } => {
            assert_eq!((session_id, total), (session, acked.to_string()));
        }
        _ => unreachable!(),
    }

    // The keeper's view: the relay's stored vouchers and grants, settled from an anvil account (a settler on dev
    // chains) before the revocation takes effect.
    type Row = (Vec<u8>, Vec<u8>, String, Vec<u8>, Vec<u8>, Vec<u8>, String, i64, String, Vec<u8>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT v.grant_id, v.payee, v.cumulative::text, v.signature,
                g.listener, g.session_key, g.cap::text, extract(epoch FROM g.expires_at)::int8, g.nonce::text,
                g.signature
         FROM vouchers v JOIN grants g USING (grant_id) WHERE v.listener = $1",
    )
    .bind(listener.address().as_slice())
    .fetch_all(db.pool())
    .await?;
    assert_eq!(rows.len(), 1, "one pair was vouched");
    let items = rows
        .into_iter()
        .map(|(g, p, cumulative, sig, l, key, cap, expires, nonce, grant_sig)| {
            let grant = SessionGrant {
                listener: Address::from_slice(&l),
                sessionKey: Address::from_slice(&key),
                cap: cap.parse()?,
                expiresAt: expires as u64,
                nonce: nonce.parse()?,
            };
            assert_eq!(grant.id(), B256::from_slice(&g));
            eyre::Ok(BeatStreamVault::SettlementItem {
                grant: grant.into(),
                grantSignature: Bytes::from(grant_sig),
                payee: Address::from_slice(&p),
                cumulative: cumulative.parse()?,
                voucherSignature: Bytes::from(sig),
            })
        })
        .collect::<eyre::Result<Vec<_>>>()?;
    assert_eq!(items[0].cumulative, acked, "the stored voucher is the newest acked one");
    assert!(
        U256::from(chain.now().await?) < effective_at,
        "settling before the revocation takes effect"
    );
    let keeper = chain.anvil.signer(KEEPER);
    scene::settle(&chain, &keeper, items).await?;
    assert_eq!(
        vault.settled(grant_id, payee).call().await?,
        acked,
        "the acked cumulative settled in full"
    );

    // Once the revocation is in effect, the vault refuses the grant's vouchers too: a higher one stays unsettled.
    chain.warp(DELAY + 1).await?;
    let item = player.item(&chain, payee, (acked + U256::from(RATE)).to::<u64>())?;
    scene::settle(&chain, &keeper, vec![item]).await?;
    assert_eq!(vault.settled(grant_id, payee).call().await?, acked);

    relay.stop().await?;
    indexer_stop.cancel();
    indexer.await??;
    Ok(())
}
