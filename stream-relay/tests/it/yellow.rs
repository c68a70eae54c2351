//! The Yellow transport through the real relay, against the in-process nitronode double (`beatstream-yellow`'s
//! `double` feature: the v1 envelope, the same packing, signature, version, conservation and quorum rules).

use std::time::Duration;

use alloy::{
    primitives::{Address, B256, U256},
    signers::local::PrivateKeySigner,
};
use beatstream_signer::{KeySource, Signer};
use beatstream_stream_relay::{
    Config,
    protocol::{ClientFrame, ServerFrame, Uint, YellowDeposit},
};
use beatstream_testkit::{TestDb, kms::MotoKms};
use beatstream_yellow::{
    Allocation, Amount, AppDefinition, AppStateUpdate, Client as NodeClient, ClientConfig, Intent,
    Participant, QuorumSig, SignerKind, U64String,
    double::{Double, DoubleConfig},
    keys::AppSessionKeyState,
};
use sqlx::PgPool;

use crate::harness::{Client, Relay, Scene, config, no_rpc, seed_scene, unix_now};

const ASSET: &str = "usdc";

fn usdc(s: &str) -> Amount {
    s.parse().unwrap()
}

fn human(units: U256) -> Amount {
    Amount::from_base_units(units, 6)
}

/// A relay with the Yellow transport pointed at `double`.
fn yellow_config(db: &TestDb, double: &Double, operator: &PrivateKeySigner) -> Config {
    let mut c = config(db, no_rpc());
    c.options.yellow.yellow_url = Some(double.url());
    c.options.yellow.yellow_operator_key = Some(alloy::hex::encode(operator.to_bytes()));
    c.options.yellow.yellow_submit_grace_secs = 1;
    c.options.yellow.yellow_request_secs = 2;
    c.options.max_errors = 1000;
    // A loaded test machine may delay acks by several 100 ms beats; pausing for vouchers behind is tested
    // elsewhere, pausing for the node here.
    c.options.grace_beats = 1000;
    c
}

/// A listener paying through Yellow: its wallet (or a registered app session key) signs every state.
struct YellowPlayer {
    wallet: PrivateKeySigner,
    signer: PrivateKeySigner,
    kind: SignerKind,
    definition: AppDefinition,
    deposit: Amount,
    version: u64,
    session_data: String,
}

impl YellowPlayer {
    fn new(operator: Address, payee: Address, deposit: &str) -> Self {
        let wallet = PrivateKeySigner::random();
        let definition = AppDefinition {
            application_id: "beatstream".into(),
            participants: vec![
                Participant { wallet_address: wallet.address(), signature_weight: 1 },
                Participant { wallet_address: operator, signature_weight: 1 },
                Participant { wallet_address: payee, signature_weight: 0 },
            ],
            quorum: 2,
            nonce: U64String(unix_now() * 1000 + u64::from(wallet.address()[19])),
        };
        Self {
            signer: wallet.clone(),
            wallet,
            kind: SignerKind::Wallet,
            definition,
            deposit: usdc(deposit),
            version: 2,
            session_data: r#"{"app":"beatstream"}"#.into(),
        }
    }

    fn listener(&self) -> Address {
        self.wallet.address()
    }

    fn id(&self) -> B256 {
        self.definition.session_id()
    }

    fn payee(&self) -> Address {
        self.definition.participants[2].wallet_address
    }

    fn operator(&self) -> Address {
        self.definition.participants[1].wallet_address
    }

    fn allocations(&self, listener: Amount, payee: Amount) -> Vec<Allocation> {
        vec![
            Allocation { participant: self.listener(), asset: ASSET.into(), amount: listener },
            Allocation { participant: self.operator(), asset: ASSET.into(), amount: Amount::ZERO },
            Allocation { participant: self.payee(), asset: ASSET.into(), amount: payee },
        ]
    }

    fn sign(&self, hash: B256) -> String {
        alloy::hex::encode_prefixed(QuorumSig::sign(&self.signer, self.kind, hash).to_bytes())
    }

    fn open(&self, track: u64) -> ClientFrame {
        let deposit = AppStateUpdate {
            app_session_id: self.id(),
            intent: Intent::Deposit,
            version: U64String(2),
            allocations: self.allocations(self.deposit, Amount::ZERO),
            session_data: String::new(),
        };
        let close =
            AppStateUpdate { intent: Intent::Close, version: U64String(3), ..deposit.clone() };
        ClientFrame::YellowOpen {
            track_id: Uint(track.to_string()),
            definition: self.definition.clone(),
            session_data: self.session_data.clone(),
            create_sig: self.sign(self.definition.creation_hash(&self.session_data)),
            deposit: YellowDeposit {
                sig: self.sign(deposit.hash()),
                close_sig: self.sign(close.hash()),
                user_state: Double::user_state(self.listener(), self.id(), ASSET, self.deposit),
                update: deposit,
            },
        }
    }

    /// The operate update paying `paid` base units in total, at `version`.
    fn operate(&self, version: u64, paid: U256) -> AppStateUpdate {
        let paid = human(paid);
        AppStateUpdate {
            app_session_id: self.id(),
            intent: Intent::Operate,
            version: U64String(version),
            allocations: self.allocations(self.deposit.checked_sub(paid).unwrap(), paid),
            session_data: String::new(),
        }
    }

    fn update_frame(&self, session: &str, update: &AppStateUpdate) -> ClientFrame {
        let close = AppStateUpdate {
            intent: Intent::Close,
            version: U64String(update.version.0 + 1),
            ..update.clone()
        };
        ClientFrame::YellowUpdate {
            session_id: session.into(),
            update: update.clone(),
            sig: self.sign(update.hash()),
            close_sig: self.sign(close.hash()),
        }
    }

    /// The next update, paying `owed`.
    fn next(&mut self, session: &str, owed: U256) -> ClientFrame {
        self.version += 1;
        self.update_frame(session, &self.operate(self.version, owed))
    }
}

/// Opens `player`'s app session for `track`; returns the relay session id and the first owed.
async fn open(ws: &mut Client, player: &YellowPlayer, track: u64) -> eyre::Result<(String, U256)> {
    ws.send(&player.open(track)).await?;
    let session = match ws.recv_no_beat().await? {
        ServerFrame::Session { session_id, app_session_id, .. } => {
            assert_eq!(app_session_id, Some(player.id().to_string()));
            session_id
        }
        other => eyre::bail!("expected session, got {other:?}"),
    };
    let owed = ws.beat_of(&session).await?.1;
    Ok((session, owed))
}

/// Sends the next update for `owed` and waits for its ack.
async fn pay(
    ws: &mut Client,
    player: &mut YellowPlayer,
    session: &str,
    owed: U256,
) -> eyre::Result<()> {
    ws.send(&player.next(session, owed)).await?;
    match ws.recv_no_beat().await? {
        ServerFrame::Ack { cumulative, .. } if cumulative == owed.to_string() => Ok(()),
        other => eyre::bail!("expected ack of {owed}, got {other:?}"),
    }
}

async fn wait_for<F: Fn() -> bool>(what: &str, secs: u64, f: F) -> eyre::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        if tokio::time::Instant::now() > deadline {
            eyre::bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn app_row(pool: &PgPool, id: B256) -> eyre::Result<(i64, i64, String, String)> {
    Ok(sqlx::query_as(
        "SELECT version, submitted, status, paid::text FROM yellow_app_sessions WHERE app_session_id = $1",
    )
    .bind(id.as_slice())
    .fetch_one(pool)
    .await?)
}

/// Waits until the relay has recorded that the node closed app session `id`; returns its row.
async fn wait_recorded_closed(pool: &PgPool, id: B256) -> eyre::Result<(i64, i64, String, String)> {
    for _ in 0..200 {
        let row = app_row(pool, id).await?;
        if row.2 == "closed" {
            return Ok(row);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eyre::bail!("app session {id} not recorded closed: {:?}", app_row(pool, id).await?)
}

struct Setup {
    db: TestDb,
    double: Double,
    relay: Relay,
    scene: Scene,
    operator: PrivateKeySigner,
}

async fn setup() -> eyre::Result<Setup> {
    setup_with_beat(100).await
}

async fn setup_with_beat(beat_ms: u64) -> eyre::Result<Setup> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let double = Double::start(DoubleConfig::default()).await?;
    let operator = PrivateKeySigner::random();
    let mut config = yellow_config(&db, &double, &operator);
    config.options.beat_ms = beat_ms;
    let relay = Relay::start(config).await?;
    Ok(Setup { db, double, relay, scene, operator })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yellow_listener_pays_per_second_and_the_artist_is_paid_at_close() -> eyre::Result<()> {
    let Setup { db, double, relay, scene, operator } = setup().await?;
    let mut player = YellowPlayer::new(operator.address(), scene.alice.payee, "0.5");
    double.credit(player.listener(), ASSET, usdc("1"));

    let mut ws = Client::connect(&relay).await?;
    let (session, mut owed) = open(&mut ws, &player, 1).await?;
    assert_eq!(owed, U256::from(100));
    let id = player.id();
    // The node holds the funded session before the first second plays.
    let node = double.session(id).expect("created on the node");
    assert_eq!((node.version, node.status.as_str()), (2, "open"));
    assert_eq!(double.balance(player.listener(), ASSET), usdc("0.5"));

    for second in 1..=10u64 {
        assert_eq!(owed, U256::from(100 * second));
        pay(&mut ws, &mut player, &session, owed).await?;
        if second < 10 {
            owed = ws.beat_of(&session).await?.1;
        }
    }
    // Every acked update is stored before the ack, and reaches the node in order.
    let (version, _, status, paid) = app_row(db.pool(), id).await?;
    assert_eq!((version, status.as_str(), paid.as_str()), (12, "open", "1000"));
    wait_for("the node to take all ten updates", 10, || {
        double.session(id).is_some_and(|s| s.version == 12)
    })
    .await?;

    ws.send(&ClientFrame::Stop { session_id: session.clone() }).await?;
    match ws.recv_until(|f| matches!(f, ServerFrame::Closed { .. })).await? {
        ServerFrame::Closed { session_id, total } => {
            assert_eq!(session_id, session);
            assert_eq!(total, "1000");
        }
        _ => unreachable!(),
    }
    // The relay closes the app session on the node with the listener's pre-signed close: funds are released.
    wait_for("the close to reach the node", 10, || {
        double.session(id).is_some_and(|s| s.status == "closed")
    })
    .await?;
    let node = double.session(id).unwrap();
    assert_eq!(node.version, 13);
    assert_eq!(double.balance(scene.alice.payee, ASSET), usdc("0.001"));
    assert_eq!(double.balance(player.listener(), ASSET), usdc("0.999"));
    assert_eq!(double.balance(operator.address(), ASSET), Amount::ZERO);
    let (version, submitted, _, _) = wait_recorded_closed(db.pool(), id).await?;
    assert_eq!((version, submitted), (13, 13));

    // History: the same session row as a vault play, marked yellow.
    let (channel, seconds, amount, listener): (String, i32, String, Vec<u8>) = sqlx::query_as(
        "SELECT channel, seconds, amount::text, listener FROM sessions WHERE session_id = $1::uuid",
    )
    .bind(&session)
    .fetch_one(db.pool())
    .await?;
    assert_eq!((channel.as_str(), seconds, amount.as_str()), ("yellow", 10, "1000"));
    assert_eq!(listener, player.listener().to_vec());
    let (streams, total): (i64, String) =
        sqlx::query_as("SELECT streams, amount::text FROM payee_listening WHERE payee = $1")
            .bind(scene.alice.payee.as_slice())
            .fetch_one(db.pool())
            .await?;
    assert_eq!((streams, total.as_str()), (1, "1000"));
    // Nothing reached the vault's voucher book.
    let vouchers: i64 =
        sqlx::query_scalar("SELECT count(*) FROM vouchers").fetch_one(db.pool()).await?;
    assert_eq!(vouchers, 0);
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_yellow_updates_are_refused_and_change_nothing() -> eyre::Result<()> {
    // One-second beats: the refusals below take well under the three beats after which a session pauses.
    let Setup { db, double, relay, scene, operator } = setup_with_beat(1000).await?;
    let mut player = YellowPlayer::new(operator.address(), scene.alice.payee, "0.5");
    double.credit(player.listener(), ASSET, usdc("1"));
    let mut ws = Client::connect(&relay).await?;
    let (session, owed) = open(&mut ws, &player, 1).await?;
    pay(&mut ws, &mut player, &session, owed).await?;
    let id = player.id();
    wait_for("the node to take version 3", 10, || {
        double.session(id).is_some_and(|s| s.version == 3)
    })
    .await?;
    let before = app_row(db.pool(), id).await?;
    assert_eq!(before.0, 3);
    let owed = ws.beat_of(&session).await?.1;
    assert_eq!(owed, U256::from(200));
    let good = player.operate(4, owed);

    // Signed by someone else's wallet.
    let mut other = YellowPlayer::new(operator.address(), scene.alice.payee, "0.5");
    other.definition = player.definition.clone();
    other.wallet = player.wallet.clone();
    other.signer = PrivateKeySigner::random();
    ws.send(&other.update_frame(&session, &good)).await?;
    ws.expect_error("wrong_signer").await?;

    // The right key behind the wrong prefix byte: 0xa3 is no signer kind, 0xa2 claims an unregistered key.
    let ClientFrame::YellowUpdate { update, sig, close_sig, .. } =
        player.update_frame(&session, &good)
    else {
        unreachable!()
    };
    let bad_prefix = format!("0xa3{}", &sig[4..]);
    let frame = ClientFrame::YellowUpdate {
        session_id: session.clone(),
        update: update.clone(),
        sig: bad_prefix,
        close_sig: close_sig.clone(),
    };
    ws.send(&frame).await?;
    ws.expect_error("invalid_signature").await?;
    let as_key = format!("0xa2{}", &sig[4..]);
    let frame = ClientFrame::YellowUpdate {
        session_id: session.clone(),
        update: update.clone(),
        sig: as_key,
        close_sig: close_sig.clone(),
    };
    ws.send(&frame).await?;
    ws.expect_error("wrong_signer").await?;

    // A close signature over something else.
    let frame = ClientFrame::YellowUpdate {
        session_id: session.clone(),
        update: update.clone(),
        sig: sig.clone(),
        close_sig: player.sign(good.hash()),
    };
    ws.send(&frame).await?;
    ws.expect_error("wrong_signer").await?;

    // Skipped and repeated versions.
    ws.send(&player.update_frame(&session, &player.operate(5, owed))).await?;
    ws.expect_error("wrong_version").await?;
    ws.send(&player.update_frame(&session, &player.operate(3, owed))).await?;
    ws.expect_error("wrong_version").await?;

    // Allocations that do not conserve the deposit, or name a stranger, or pay the operator.
    let mut leak = good.clone();
    leak.allocations[0].amount = usdc("0.4999");
    ws.send(&player.update_frame(&session, &leak)).await?;
    ws.expect_error("allocation_mismatch").await?;
    let mut stranger = good.clone();
    stranger.allocations[1].participant = Address::repeat_byte(0x55);
    ws.send(&player.update_frame(&session, &stranger)).await?;
    ws.expect_error("allocation_mismatch").await?;
    let mut to_operator = good.clone();
    to_operator.allocations[0].amount = usdc("0.4997");
    to_operator.allocations[1].amount = usdc("0.0001");
    ws.send(&player.update_frame(&session, &to_operator)).await?;
    ws.expect_error("allocation_mismatch").await?;

    // More than is owed, and an amount no released second owes.
    ws.send(&player.update_frame(&session, &player.operate(4, U256::from(10_000)))).await?;
    ws.expect_error("exceeds_owed").await?;
    ws.send(&player.update_frame(&session, &player.operate(4, U256::from(150)))).await?;
    ws.expect_error("wrong_amount").await?;
    ws.send(&player.update_frame(&session, &player.operate(4, U256::from(100)))).await?;
    ws.expect_error("stale_voucher").await?;

    // Not an operate; another session's id.
    let mut withdraw = good.clone();
    withdraw.intent = Intent::Withdraw;
    ws.send(&player.update_frame(&session, &withdraw)).await?;
    ws.expect_error("invalid_app_session").await?;
    let mut elsewhere = good.clone();
    elsewhere.app_session_id = B256::repeat_byte(1);
    ws.send(&player.update_frame(&session, &elsewhere)).await?;
    ws.expect_error("invalid_app_session").await?;

    // Malformed frames.
    ws.send_text(r#"{"type":"yellowUpdate","sessionId":"x"}"#).await?;
    ws.expect_error("invalid_field").await?;
    ws.send_text(&format!(
        r#"{{"type":"yellowUpdate","sessionId":"{session}","update":{{"app_session_id":"{id}","intent":0,"version":4,"allocations":[],"session_data":""}},"sig":"0x","closeSig":"0x"}}"#
    ))
    .await?;
    ws.expect_error("invalid_field").await?;

    // Nothing changed: not in the database, not on the node; the good update still goes through.
    assert_eq!(app_row(db.pool(), id).await?, before);
    assert_eq!(double.session(id).unwrap().version, 3);
    ws.send(&player.update_frame(&session, &good)).await?;
    match ws.recv_no_beat().await? {
        ServerFrame::Ack { cumulative, .. } => assert_eq!(cumulative, "200"),
        other => eyre::bail!("expected the ack, got {other:?}"),
    }
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_opens_and_node_refusals_change_nothing() -> eyre::Result<()> {
    let Setup { db, double, relay, scene, operator } = setup().await?;
    let player = YellowPlayer::new(operator.address(), scene.alice.payee, "0.5");
    double.credit(player.listener(), ASSET, usdc("1"));
    let mut ws = Client::connect(&relay).await?;

    // The operator without signing weight: the listener could take the artist's earnings back alone.
    let mut weak = YellowPlayer::new(operator.address(), scene.alice.payee, "0.5");
    weak.definition.participants[1].signature_weight = 0;
    weak.definition.quorum = 1;
    ws.send(&weak.open(1)).await?;
    ws.expect_error("invalid_app_session").await?;
    // The artist of another track.
    ws.send(&YellowPlayer::new(operator.address(), scene.bob.payee, "0.5").open(1)).await?;
    ws.expect_error("invalid_app_session").await?;
    // An unknown track.
    ws.send(&player.open(99)).await?;
    ws.expect_error("unknown_track").await?;
    // A creation signed by a stranger.
    let mut forged = YellowPlayer::new(operator.address(), scene.alice.payee, "0.5");
    forged.definition = player.definition.clone();
    forged.wallet = player.wallet.clone();
    forged.signer = PrivateKeySigner::random();
    ws.send(&forged.open(1)).await?;
    ws.expect_error("wrong_signer").await?;

    // The node refuses the creation: its message is passed on, nothing is stored.
    double.fail_next(
        "app_sessions.v1.create_app_session",
        "application beatstream is not registered",
        1,
    );
    ws.send(&player.open(1)).await?;
    let message = ws.expect_error("node_refused").await?;
    assert!(message.contains("not registered"), "{message}");
    // The node refuses the deposit (the listener has no channel): nothing stored either.
    let broke = YellowPlayer::new(operator.address(), scene.alice.payee, "0.5");
    ws.send(&broke.open(1)).await?;
    let message = ws.expect_error("node_refused").await?;
    assert!(message.contains("no active channel"), "{message}");
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM yellow_app_sessions").fetch_one(db.pool()).await?;
    assert_eq!(rows, 0);
    let sessions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sessions").fetch_one(db.pool()).await?;
    assert_eq!(sessions, 0);

    // Opens that failed change nothing, so they can be retried: the node already holds the unfunded session of
    // the second one, and the relay deposits into it.
    double.credit(broke.listener(), ASSET, usdc("1"));
    let (session, _) = open(&mut ws, &broke, 1).await?;
    assert!(!session.is_empty());
    assert_eq!(double.balance(broke.listener(), ASSET), usdc("0.5"));
    let (session, _) = open(&mut ws, &player, 1).await?;
    assert!(!session.is_empty());
    assert_eq!(double.balance(player.listener(), ASSET), usdc("0.5"));
    // An app session opens once.
    ws.send(&player.open(1)).await?;
    let message = ws.expect_error("invalid_app_session").await?;
    assert!(message.contains("already opened"), "{message}");
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_without_yellow_says_so() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let relay = Relay::start(config(&db, no_rpc())).await?;
    let mut ws = Client::connect(&relay).await?;
    let player = YellowPlayer::new(Address::repeat_byte(9), scene.alice.payee, "0.5");
    ws.send(&player.open(1)).await?;
    ws.expect_error("yellow_disabled").await?;
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_app_session_key_signs_for_the_listener() -> eyre::Result<()> {
    let Setup { db: _db, double, relay, scene, operator } = setup().await?;
    let mut player = YellowPlayer::new(operator.address(), scene.alice.payee, "0.5");
    double.credit(player.listener(), ASSET, usdc("1"));
    // The wallet delegates to a key for this application, on the node.
    let key = PrivateKeySigner::random();
    let node = NodeClient::spawn(ClientConfig::new(double.url()));
    node.wait_connected(Duration::from_secs(5)).await?;
    let state = AppSessionKeyState::sign(
        &player.wallet,
        &key,
        1,
        vec!["beatstream".into()],
        vec![],
        unix_now() + 3600,
    );
    node.submit_session_key_state(&state).await?;
    player.signer = key;
    player.kind = SignerKind::SessionKey;

    let mut ws = Client::connect(&relay).await?;
    let (session, owed) = open(&mut ws, &player, 1).await?;
    pay(&mut ws, &mut player, &session, owed).await?;
    let owed = ws.beat_of(&session).await?.1;
    pay(&mut ws, &mut player, &session, owed).await?;
    let id = player.id();
    wait_for("the node to take both updates", 10, || {
        double.session(id).is_some_and(|s| s.version == 4)
    })
    .await?;
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_going_away_pauses_the_session_and_is_caught_up_on_return() -> eyre::Result<()> {
    let Setup { db, double, relay, scene, operator } = setup().await?;
    let mut player = YellowPlayer::new(operator.address(), scene.alice.payee, "0.5");
    double.credit(player.listener(), ASSET, usdc("1"));
    let mut ws = Client::connect(&relay).await?;
    let (session, mut owed) = open(&mut ws, &player, 1).await?;
    let id = player.id();
    pay(&mut ws, &mut player, &session, owed).await?;
    wait_for("version 3 on the node", 10, || double.session(id).is_some_and(|s| s.version == 3))
        .await?;

    double.stop().await;
    // Updates are still verified, stored and acked while the node is away...
    let mut acked_while_away = 0;
    let paused = loop {
        match ws.recv().await? {
            ServerFrame::Beat { owed: o, .. } => {
                owed = o.parse()?;
                ws.send(&player.next(&session, owed)).await?;
            }
            ServerFrame::Ack { .. } => acked_while_away += 1,
            ServerFrame::Paused { reason, .. } => break reason,
            other => eyre::bail!("unexpected {other:?}"),
        }
    };
    // ...until they have waited longer than the grace: then the session stops releasing seconds.
    assert_eq!(paused, "node_unreachable");
    assert!(acked_while_away >= 1, "acks continued while the node was away");
    let stored = app_row(db.pool(), id).await?;
    assert!(stored.1 < stored.0, "submitted {} trails stored {}", stored.1, stored.0);
    assert_eq!(double.session(id).unwrap().version, 3);

    // The node returns: the relay reconnects, submits the backlog in order, and the session plays on.
    double.restart().await?;
    let version = stored.0 as u64;
    wait_for("the backlog on the node", 20, || {
        double.session(id).is_some_and(|s| s.version == version)
    })
    .await?;
    let (_, next_owed) = loop {
        match ws.recv().await? {
            ServerFrame::Beat { second, owed: o, .. } => break (second, o.parse::<U256>()?),
            ServerFrame::Ack { .. } => {}
            other => eyre::bail!("unexpected {other:?}"),
        }
    };
    pay(&mut ws, &mut player, &session, next_owed).await?;
    ws.send(&ClientFrame::Stop { session_id: session.clone() }).await?;
    ws.recv_until(|f| matches!(f, ServerFrame::Closed { .. })).await?;
    wait_for("the close on the node", 20, || {
        double.session(id).is_some_and(|s| s.status == "closed")
    })
    .await?;
    assert_eq!(double.balance(scene.alice.payee, ASSET), human(next_owed));
    relay.stop().await
}

/// `kill -9` of a relay with Yellow sessions under load: every acked update is stored with the listener's
/// signature; the restarted relay closes the dead run's app sessions with their pre-signed closes and catches the
/// node up, so the artist receives exactly what is stored and every listener gets the rest of its deposit back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acked_update_and_the_restart_settles_every_app_session() -> eyre::Result<()>
{
    use crate::durability::ChildRelay;
    use crate::harness::Event;

    const PLAYERS: usize = 10;
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let alice = scene.alice.payee;
    let double = Double::start(DoubleConfig::default()).await?;
    let operator = PrivateKeySigner::random();
    let extra = format!("{} {}", double.url(), alloy::hex::encode(operator.to_bytes()));
    let mut relay = ChildRelay::spawn_with(&db, &extra).await?;
    let target = relay.as_relay();

    let players: Vec<YellowPlayer> = (0..PLAYERS)
        .map(|_| {
            let p = YellowPlayer::new(operator.address(), alice, "1");
            double.credit(p.listener(), ASSET, usdc("2"));
            p
        })
        .collect();
    let tasks: Vec<_> = players
        .into_iter()
        .map(|mut p| {
            let url = target.url();
            tokio::spawn(async move {
                let mut c = Client::connect_url(&url).await?;
                let (session, first) = open(&mut c, &p, 1).await?;
                c.send(&p.next(&session, first)).await?;
                let (mut acked, mut sent) = (U256::ZERO, first);
                loop {
                    match c.event_within(10).await {
                        Ok(Event::Frame(ServerFrame::Beat { owed, .. })) => {
                            sent = owed.parse()?;
                            if c.send(&p.next(&session, sent)).await.is_err() {
                                break;
                            }
                        }
                        Ok(Event::Frame(ServerFrame::Ack { cumulative, .. })) => {
                            acked = acked.max(cumulative.parse()?);
                        }
                        Ok(Event::Frame(other)) => eyre::bail!("unexpected {other:?}"),
                        Ok(Event::Closed(_)) | Err(_) => break,
                    }
                }
                eyre::Ok((p, acked, sent))
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    relay.child.kill()?; // SIGKILL
    relay.child.wait()?;
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await??);
    }
    // A COMMIT the dead relay sent still lands; read what is stored once it has.
    crate::durability::wait_for_killed_commits(&db).await?;

    // Every acked update is stored (or a newer one), never one that was not sent, with the listener's signature.
    let mut stored_total = U256::ZERO;
    for (p, acked, sent) in &results {
        assert!(!acked.is_zero(), "updates were acked before the kill");
        let (version, _, _, paid) = app_row(db.pool(), p.id()).await?;
        let paid: U256 = paid.parse()?;
        assert!(paid >= *acked && paid <= *sent, "acked {acked}, sent {sent}, stored {paid}");
        let (update, sig): (String, Vec<u8>) = sqlx::query_as(
            "SELECT \"update\"::text, listener_sig FROM yellow_states WHERE app_session_id = $1 AND version = $2",
        )
        .bind(p.id().as_slice())
        .bind(version)
        .fetch_one(db.pool())
        .await?;
        let update: AppStateUpdate = serde_json::from_str(&update)?;
        assert_eq!(update.amount_of(alice, ASSET), human(paid));
        assert_eq!(QuorumSig::from_bytes(&sig)?.recover(update.hash())?, p.listener());
        stored_total += paid;
    }

    // Restart under the same relay id: the dead run's sessions end, their app sessions close on the node.
    let _relay = ChildRelay::spawn_with(&db, &extra).await?;
    for (p, _, _) in &results {
        let id = p.id();
        wait_for("every app session closed on the node", 30, || {
            double.session(id).is_some_and(|s| s.status == "closed")
        })
        .await?;
        let (version, submitted, _, paid) = wait_recorded_closed(db.pool(), id).await?;
        assert_eq!(double.session(id).unwrap().version, version as u64);
        assert_eq!(submitted, version);
        let paid: U256 = paid.parse()?;
        // Credit 2, deposit 1, of which the artist's share is gone.
        let back = usdc("1").checked_add(usdc("1").checked_sub(human(paid)).unwrap()).unwrap();
        assert_eq!(double.balance(p.listener(), ASSET), back);
    }
    assert_eq!(double.balance(alice, ASSET), human(stored_total));
    Ok(())
}

/// A relay that crashed after funding an app session on the node but before recording it: the player's retried
/// open finds the session funded by exactly this deposit and carries on, instead of stranding the deposit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_open_adopts_a_session_the_node_already_funded() -> eyre::Result<()> {
    use beatstream_yellow::methods::{CreateAppSession, SubmitDepositState};

    let Setup { db: _db, double, relay, scene, operator } = setup().await?;
    let mut player = YellowPlayer::new(operator.address(), scene.alice.payee, "0.5");
    double.credit(player.listener(), ASSET, usdc("1"));
    // What the crashed relay did: create and deposit, co-signed.
    let ClientFrame::YellowOpen { definition, session_data, create_sig, deposit, .. } =
        player.open(1)
    else {
        unreachable!()
    };
    let node = NodeClient::spawn(ClientConfig::new(double.url()));
    node.wait_connected(Duration::from_secs(5)).await?;
    let parse = |s: &str| QuorumSig::from_bytes(&alloy::hex::decode(s).unwrap()).unwrap();
    let cosign = |h| QuorumSig::sign(&operator, SignerKind::Wallet, h);
    node.create_app_session(&CreateAppSession {
        quorum_sigs: vec![parse(&create_sig), cosign(definition.creation_hash(&session_data))],
        definition,
        session_data,
    })
    .await?;
    node.submit_deposit_state(&SubmitDepositState {
        quorum_sigs: vec![parse(&deposit.sig), cosign(deposit.update.hash())],
        app_state_update: deposit.update,
        user_state: deposit.user_state,
    })
    .await?;
    assert_eq!(double.balance(player.listener(), ASSET), usdc("0.5"));

    let mut ws = Client::connect(&relay).await?;
    let (session, owed) = open(&mut ws, &player, 1).await?;
    pay(&mut ws, &mut player, &session, owed).await?;
    let id = player.id();
    wait_for("version 3 on the node", 10, || double.session(id).is_some_and(|s| s.version == 3))
        .await?;
    // Deposited once.
    assert_eq!(double.balance(player.listener(), ASSET), usdc("0.5"));
    relay.stop().await
}

/// The node refusing submissions (a rate limit, say): acked updates stay stored, the refusal is recorded for
/// operators, and the relay resubmits after a backoff until the node takes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_refusals_of_stored_updates_are_retried_and_recorded() -> eyre::Result<()> {
    let Setup { db, double, relay, scene, operator } = setup().await?;
    let mut player = YellowPlayer::new(operator.address(), scene.alice.payee, "0.5");
    double.credit(player.listener(), ASSET, usdc("1"));
    let mut ws = Client::connect(&relay).await?;
    let (session, owed) = open(&mut ws, &player, 1).await?;
    let id = player.id();
    double.fail_next("app_sessions.v1.submit_app_state", "rate limit exceeded", 2);
    pay(&mut ws, &mut player, &session, owed).await?;
    let owed = ws.beat_of(&session).await?.1;
    pay(&mut ws, &mut player, &session, owed).await?;

    let mut recorded = None;
    for _ in 0..100 {
        let error: Option<String> = sqlx::query_scalar(
            "SELECT last_error FROM yellow_app_sessions WHERE app_session_id = $1",
        )
        .bind(id.as_slice())
        .fetch_one(db.pool())
        .await?;
        if error.is_some() {
            recorded = error;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recorded.as_deref(), Some("rate limit exceeded"));
    wait_for("the retried updates on the node", 20, || {
        double.session(id).is_some_and(|s| s.version == 4)
    })
    .await?;
    assert_eq!(app_row(db.pool(), id).await?.2, "open");

    ws.send(&ClientFrame::Stop { session_id: session }).await?;
    ws.recv_until(|f| matches!(f, ServerFrame::Closed { .. })).await?;
    wait_for("the close on the node", 20, || {
        double.session(id).is_some_and(|s| s.status == "closed")
    })
    .await?;
    assert_eq!(double.balance(scene.alice.payee, ASSET), human(owed));
    relay.stop().await
}

/// The operator's key held in AWS KMS. KMS here is moto's server (`beatstream_testkit::kms`), with one behaviour
/// corrected in its launcher (`script/moto_kms.py`): moto ignores `MessageType=DIGEST` and signs the SHA-256 of
/// the digest; the launcher signs the given 32 bytes as the digest, as AWS KMS does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_key_in_kms_co_signs_what_the_node_accepts() -> eyre::Result<()> {
    let kms = MotoKms::start()?;
    let (key_id, operator) = kms.create_ethereum_key().await?;

    // Through the relay's own role and the shared signer: a co-signature made by KMS recovers to the operator.
    let role = beatstream_stream_relay::YellowConfig::OPERATOR;
    let source = KeySource::AwsKms { key_id: key_id.clone(), aws: Some(kms.settings()) };
    let signer = Signer::load(&role, source).await?;
    assert_eq!(signer.address(), operator);
    let hash = B256::repeat_byte(7);
    let cosig = QuorumSig::sign_with(&signer, SignerKind::Wallet, hash).await?;
    assert_eq!(cosig.recover(hash)?, operator);

    // A relay whose operator is the KMS key: the double, which checks every quorum signature against the
    // participants, takes the creation, the deposit, each update and the close.
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let double = Double::start(DoubleConfig::default()).await?;
    let mut config = yellow_config(&db, &double, &PrivateKeySigner::random());
    config.options.yellow.yellow_operator_key = None;
    config.options.yellow.yellow_operator_aws_kms_key_id = Some(key_id.clone());
    config.options.yellow.yellow_operator_aws = Some(kms.settings());
    config.options.beat_ms = 100;
    let relay = Relay::start(config.clone()).await?;
    let mut player = YellowPlayer::new(operator, scene.alice.payee, "0.5");
    double.credit(player.listener(), ASSET, usdc("1"));
    let mut ws = Client::connect(&relay).await?;
    let (session, mut owed) = open(&mut ws, &player, 1).await?;
    let id = player.id();
    assert_eq!(double.session(id).map(|s| s.version), Some(2), "created and funded on the node");
    for second in 1..=3 {
        pay(&mut ws, &mut player, &session, owed).await?;
        if second < 3 {
            owed = ws.beat_of(&session).await?.1;
        }
    }
    wait_for("the node to take the updates", 10, || {
        double.session(id).is_some_and(|s| s.version == 5)
    })
    .await?;
    ws.send(&ClientFrame::Stop { session_id: session }).await?;
    ws.recv_until(|f| matches!(f, ServerFrame::Closed { .. })).await?;
    wait_for("the close on the node", 10, || {
        double.session(id).is_some_and(|s| s.status == "closed")
    })
    .await?;
    assert_eq!(double.balance(scene.alice.payee, ASSET), human(owed));
    relay.stop().await?;

    // A key id KMS does not know stops the relay at start, naming the key.
    config.options.yellow.yellow_operator_aws_kms_key_id = Some("alias/no-such-operator".into());
    let err = Relay::start(config).await.err().expect("a relay with an unknown KMS key started");
    let shown = format!("{err:#}");
    assert!(
        shown.contains(
            "yellow operator signer: AWS KMS key alias/no-such-operator was not found in region us-east-1"
        ),
        "{shown}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yellow_listener_gets_the_keys_of_exactly_the_seconds_its_updates_paid()
-> eyre::Result<()> {
    use beatstream_audio::{TrackSecret, chunk_key};

    use crate::audio::{NODE_KEY, seed_audio_track};

    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let double = Double::start(DoubleConfig::default()).await?;
    let operator = PrivateKeySigner::random();
    let secret = TrackSecret::from_bytes([0x29; 32]);
    seed_audio_track(db.pool(), 10, &scene.alice, &secret, 6, 6).await?;
    let mut config = yellow_config(&db, &double, &operator);
    config.audio_key.audio_key = Some(alloy::hex::encode(NODE_KEY));
    let relay = Relay::start(config).await?;
    let mut player = YellowPlayer::new(operator.address(), scene.alice.payee, "0.5");
    double.credit(player.listener(), ASSET, usdc("1"));

    let mut ws = Client::connect(&relay).await?;
    let (session, mut owed) = open(&mut ws, &player, 10).await?;
    // The app session starts at nothing paid: the update paying second n carries exactly chunk n − 1's key.
    for second in 1..=3u32 {
        ws.send(&player.next(&session, owed)).await?;
        let keys = match ws.recv_no_beat().await? {
            ServerFrame::Ack { cumulative, keys, .. } if cumulative == owed.to_string() => keys,
            other => eyre::bail!("expected the ack of {owed}, got {other:?}"),
        };
        let index = second - 1;
        assert_eq!(keys.iter().map(|k| k.index).collect::<Vec<_>>(), vec![index]);
        assert_eq!(keys[0].key, alloy::hex::encode_prefixed(chunk_key(&secret, index).expose()));
        owed = ws.beat_of(&session).await?.1;
    }
    // Stopped with second 4 released but unpaid: no more keys, and its key never came.
    ws.send(&ClientFrame::Stop { session_id: session.clone() }).await?;
    loop {
        match ws.recv().await? {
            ServerFrame::Closed { session_id, total } => {
                assert_eq!((session_id, total), (session.clone(), "300".to_owned()));
                break;
            }
            ServerFrame::Ack { keys, .. } => assert!(keys.is_empty(), "{keys:?}"),
            _ => {}
        }
    }
    relay.stop().await
}
