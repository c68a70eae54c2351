//! The client against the nitronode double: node methods, a full app session with real keys, refusals that change
//! nothing, app session keys, injected failures, and a node that goes away and comes back.

use std::{
    fmt::Debug,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use alloy::{hex, primitives::B256, signers::local::PrivateKeySigner};
use beatstream_yellow::{
    Allocation, Amount, AppDefinition, AppSessionKeyState, AppStateUpdate, Client, ClientConfig,
    Error, Intent, NodeErrorKind, Participant, QuorumSig, SignerKind, Status, U64String,
    double::{Double, DoubleConfig},
    methods::{self, CreateAppSession, SubmitAppState, SubmitDepositState},
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message as Frame, protocol::frame::coding::CloseCode};

const USDC: &str = "usdc";
const APP: &str = "beatstream";
const SESSION_DATA: &str = r#"{"track":"t-1"}"#;

fn usdc(amount: &str) -> Amount {
    amount.parse().unwrap()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn lower(bytes: impl AsRef<[u8]>) -> String {
    hex::encode_prefixed(bytes)
}

/// A client that re-dials quickly.
async fn connect(double: &Double) -> Client {
    let mut config = ClientConfig::new(double.url());
    config.backoff_max = Duration::from_millis(500);
    config.request_timeout = Duration::from_secs(5);
    let client = Client::spawn(config);
    client.wait_connected(Duration::from_secs(10)).await.unwrap();
    client
}

/// `result` is the node's refusal `message`, of `kind`.
#[track_caller]
fn assert_refused<T: Debug>(result: Result<T, Error>, message: &str, kind: NodeErrorKind) {
    match result {
        Err(Error::Node(e)) => {
            assert_eq!(e.message, message);
            assert_eq!(e.kind(), kind, "kind of {message:?}");
        }
        other => panic!("expected the refusal {message:?}, got {other:?}"),
    }
}

/// A payer (listener), the service (operator) and a payee (artist): listener 1, operator 1, artist 0, quorum 2.
struct Stream {
    double: Double,
    client: Client,
    listener: PrivateKeySigner,
    operator: PrivateKeySigner,
    artist: PrivateKeySigner,
    definition: AppDefinition,
    id: B256,
}

impl Stream {
    /// A session created (version 1) and funded with 1.5 usdc of the listener's 2 (version 2).
    async fn open() -> Self {
        let double = Double::start(DoubleConfig::default()).await.unwrap();
        let client = connect(&double).await;
        let (listener, operator, artist) =
            (PrivateKeySigner::random(), PrivateKeySigner::random(), PrivateKeySigner::random());
        let definition = AppDefinition {
            application_id: APP.into(),
            participants: vec![
                Participant { wallet_address: listener.address(), signature_weight: 1 },
                Participant { wallet_address: operator.address(), signature_weight: 1 },
                Participant { wallet_address: artist.address(), signature_weight: 0 },
            ],
            quorum: 2,
            nonce: U64String(now()),
        };
        let hash = definition.creation_hash(SESSION_DATA);
        let created = client
            .create_app_session(&CreateAppSession {
                definition: definition.clone(),
                session_data: SESSION_DATA.into(),
                quorum_sigs: vec![
                    QuorumSig::sign(&listener, SignerKind::Wallet, hash),
                    QuorumSig::sign(&operator, SignerKind::Wallet, hash),
                ],
            })
            .await
            .unwrap();
        assert_eq!(created.app_session_id, definition.session_id());
        assert_eq!((created.version, created.status.as_str()), (U64String(1), "open"));
        let stream = Self {
            id: created.app_session_id,
            double,
            client,
            listener,
            operator,
            artist,
            definition,
        };
        stream.double.credit(stream.listener.address(), USDC, usdc("2"));
        stream.deposit(usdc("1.5"), usdc("1.5")).await.unwrap();
        stream
    }

    /// An update at `version` with the listener's and the artist's holdings.
    fn update(&self, intent: Intent, version: u64, listener: &str, artist: &str) -> AppStateUpdate {
        let holding = |wallet: &PrivateKeySigner, amount: &str| Allocation {
            participant: wallet.address(),
            asset: USDC.into(),
            amount: usdc(amount),
        };
        AppStateUpdate {
            app_session_id: self.id,
            intent,
            version: U64String(version),
            allocations: vec![holding(&self.listener, listener), holding(&self.artist, artist)],
            session_data: String::new(),
        }
    }

    /// `update` signed by each of `signers`.
    fn signed(
        &self,
        update: AppStateUpdate,
        signers: &[(&PrivateKeySigner, SignerKind)],
    ) -> SubmitAppState {
        let hash = update.hash();
        let quorum_sigs =
            signers.iter().map(|(signer, kind)| QuorumSig::sign(signer, *kind, hash)).collect();
        SubmitAppState { app_state_update: update, quorum_sigs }
    }

    /// `update` signed by the listener's and the operator's wallets.
    fn by_both(&self, update: AppStateUpdate) -> SubmitAppState {
        self.signed(
            update,
            &[(&self.listener, SignerKind::Wallet), (&self.operator, SignerKind::Wallet)],
        )
    }

    async fn submit(&self, update: AppStateUpdate) -> Result<(), Error> {
        self.client.submit_app_state(&self.by_both(update)).await
    }

    /// The listener raises its holding to `holding` (artist at zero), its channel state committing `committed`.
    async fn deposit(&self, holding: Amount, committed: Amount) -> Result<(), Error> {
        let version = self.version() + 1;
        let update = self.update(Intent::Deposit, version, &holding.to_string(), "0");
        let signed = self.by_both(update);
        let user_state = Double::user_state(self.listener.address(), self.id, USDC, committed);
        self.client
            .submit_deposit_state(&SubmitDepositState {
                app_state_update: signed.app_state_update,
                quorum_sigs: signed.quorum_sigs,
                user_state,
            })
            .await
    }

    fn version(&self) -> u64 {
        self.double.session(self.id).unwrap().version
    }
}

#[tokio::test]
async fn node_methods_answer() {
    let double = Double::start(DoubleConfig::default()).await.unwrap();
    let client = connect(&double).await;
    client.ping().await.unwrap();
    let config = client.get_config().await.unwrap();
    assert_eq!(config.node_version.as_deref(), Some("double-v1.4.1"));
    assert!(config.node_address.is_some_and(|a| a.starts_with("0x") && a.len() == 42));
    assert_eq!(config.supported_sig_validators.as_deref(), Some("AAE="));
    assert_eq!(config.extra["blockchains"], json!([]));
    let assets = client.get_assets().await.unwrap();
    assert_eq!(assets.assets.len(), 1);
    assert_eq!((assets.assets[0].symbol.as_str(), assets.assets[0].decimals), (USDC, 6));
    assert_eq!(assets.assets[0].extra["suggested_blockchain_id"], "1");
    assert!(double.accepted(methods::PING) >= 1);
    assert_eq!(double.accepted(methods::GET_ASSETS), 1);
}

#[tokio::test]
async fn a_stream_runs_from_creation_to_payout() {
    let s = Stream::open().await;
    assert_eq!(s.double.balance(s.listener.address(), USDC), usdc("0.5"));
    let mut listener = usdc("1.5");
    let mut artist = Amount::ZERO;
    for version in 3..=12 {
        listener = listener.checked_sub(usdc("0.01")).unwrap();
        artist = artist.checked_add(usdc("0.01")).unwrap();
        let update = s.update(Intent::Operate, version, &listener.to_string(), &artist.to_string());
        s.submit(update).await.unwrap();
    }
    assert_eq!((listener, artist), (usdc("1.4"), usdc("0.1")));
    s.submit(s.update(Intent::Close, 13, "1.4", "0.1")).await.unwrap();

    assert_eq!(s.double.balance(s.artist.address(), USDC), usdc("0.1"));
    assert_eq!(s.double.balance(s.listener.address(), USDC), usdc("1.9"));
    assert_eq!(s.double.balance(s.operator.address(), USDC), Amount::ZERO);
    let balances = s.client.get_balances(s.artist.address()).await.unwrap();
    assert_eq!(balances.balances.len(), 1);
    assert_eq!(
        (balances.balances[0].asset.as_str(), balances.balances[0].amount),
        (USDC, usdc("0.1"))
    );

    let view = s.double.session(s.id).unwrap();
    assert_eq!((view.status.as_str(), view.version), ("closed", 13));
    assert_eq!(view.session_data, SESSION_DATA);
    assert!(view.allocations.iter().all(|a| a.amount.is_zero()));
    let info = s.client.get_app_session(s.id).await.unwrap().unwrap();
    assert_eq!((info.status.as_str(), info.version), ("closed", U64String(13)));
    assert_eq!(info.extra["app_definition"]["quorum"], 2);
    assert_eq!(s.double.accepted(methods::SUBMIT_APP_STATE), 11);
    assert_eq!(s.double.accepted(methods::SUBMIT_DEPOSIT_STATE), 1);

    // By participant, too, and nothing more once closed.
    let found = s
        .client
        .request_raw(methods::GET_APP_SESSIONS, json!({ "participant": lower(s.artist.address()) }))
        .await
        .unwrap();
    assert_eq!(found["app_sessions"][0]["app_session_id"], lower(s.id));
    assert_eq!(found["metadata"]["total_count"], 1);
    assert_refused(
        s.submit(s.update(Intent::Operate, 14, "1.4", "0.1")).await,
        "app session is already closed",
        NodeErrorKind::NotFound,
    );
}

#[tokio::test]
async fn refused_updates_change_nothing() {
    let s = Stream::open().await;
    let before = s.double.session(s.id).unwrap();
    let listener = lower(s.listener.address());
    let stranger = PrivateKeySigner::random();
    let operate = || s.update(Intent::Operate, 3, "1.4", "0.1");

    // A non-participant's wallet signature.
    let req =
        s.signed(operate(), &[(&stranger, SignerKind::Wallet), (&s.operator, SignerKind::Wallet)]);
    assert_refused(
        s.client.submit_app_state(&req).await,
        &format!("signature from non-participant: {}", lower(stranger.address())),
        NodeErrorKind::Signature,
    );

    // A prefix byte that names no signer kind (0xA3); the client's types cannot write one, so it goes raw.
    let mut raw = serde_json::to_value(s.by_both(operate())).unwrap();
    let sig = raw["quorum_sigs"][0].as_str().unwrap().replacen("0xa1", "0xa3", 1);
    raw["quorum_sigs"][0] = json!(sig);
    assert_refused(
        s.client.request_raw(methods::SUBMIT_APP_STATE, raw).await,
        "failed to recover user wallet: invalid signature: unknown signer type 163",
        NodeErrorKind::Signature,
    );

    // A 0xA2 signature from a key nobody registered.
    let unregistered = PrivateKeySigner::random();
    let req = s.signed(
        operate(),
        &[(&unregistered, SignerKind::SessionKey), (&s.operator, SignerKind::Wallet)],
    );
    assert_refused(
        s.client.submit_app_state(&req).await,
        &format!(
            "failed to recover user wallet: no active session key found for key {} and app session {}",
            lower(unregistered.address()),
            lower(s.id)
        ),
        NodeErrorKind::Signature,
    );

    // Versions: skipped, repeated.
    assert_refused(
        s.submit(s.update(Intent::Operate, 4, "1.4", "0.1")).await,
        "invalid app session version: expected 3, got 4",
        NodeErrorKind::Version,
    );
    assert_refused(
        s.submit(s.update(Intent::Operate, 2, "1.4", "0.1")).await,
        "invalid app session version: expected 3, got 2",
        NodeErrorKind::Version,
    );

    // Money from nowhere.
    assert_refused(
        s.submit(s.update(Intent::Operate, 3, "1.5", "0.1")).await,
        "operate intent allocation mismatch for asset usdc: total allocations 1.6, session balance 1.5",
        NodeErrorKind::Allocation,
    );

    // Only the listener signs: weight 1 of 2.
    let req = s.signed(operate(), &[(&s.listener, SignerKind::Wallet)]);
    assert_refused(
        s.client.submit_app_state(&req).await,
        "quorum not met: achieved 1, required 2",
        NodeErrorKind::Signature,
    );

    // A close that redistributes.
    assert_refused(
        s.submit(s.update(Intent::Close, 3, "1.4", "0.1")).await,
        &format!(
            "close intent requires allocations to match current state: participant {listener}, asset usdc, current 1.5, provided 1.4"
        ),
        NodeErrorKind::Allocation,
    );

    // A withdrawal that raises a holding.
    assert_refused(
        s.submit(s.update(Intent::Withdraw, 3, "1.6", "0")).await,
        &format!("withdraw intent cannot increase allocations: participant {listener}, asset usdc"),
        NodeErrorKind::Allocation,
    );

    // Precision is checked on the amount as written: "1.5000000" signs as "1.5" but has 7 decimals.
    let mut raw =
        serde_json::to_value(s.by_both(s.update(Intent::Operate, 3, "1.5", "0"))).unwrap();
    raw["app_state_update"]["allocations"][0]["amount"] = json!("1.5000000");
    assert_refused(
        s.client.request_raw(methods::SUBMIT_APP_STATE, raw).await,
        &format!(
            "invalid amount for allocation with asset usdc and participant {listener}: amount exceeds maximum decimal precision: max 6 decimals allowed, got 7"
        ),
        NodeErrorKind::Allocation,
    );

    // An allocation to someone outside the session.
    let mut update = operate();
    update.allocations.push(Allocation {
        participant: stranger.address(),
        asset: USDC.into(),
        amount: Amount::ZERO,
    });
    assert_refused(
        s.submit(update).await,
        &format!("allocation to non-participant {}", lower(stranger.address())),
        NodeErrorKind::Allocation,
    );

    // Deposits have their own method.
    assert_refused(
        s.submit(s.update(Intent::Deposit, 3, "1.6", "0")).await,
        "deposit intent must use submit_deposit_state endpoint",
        NodeErrorKind::Other,
    );

    assert_eq!(s.double.session(s.id).unwrap(), before);
    assert_eq!(s.double.accepted(methods::SUBMIT_APP_STATE), 0);
}

#[tokio::test]
async fn refused_deposits_change_nothing() {
    let s = Stream::open().await;
    let before = s.double.session(s.id).unwrap();
    let balance = s.double.balance(s.listener.address(), USDC);
    assert_eq!(balance, usdc("0.5"));

    // The channel state commits less than the allocations add.
    assert_refused(
        s.deposit(usdc("1.9"), usdc("0.3")).await,
        "total deposit amount 0.4 does not match transition amount 0.3",
        NodeErrorKind::Allocation,
    );
    // More than the listener holds.
    assert_refused(
        s.deposit(usdc("2.5"), usdc("1")).await,
        "invalid state transitions: insufficient balance: available 0.5, required 1",
        NodeErrorKind::Funds,
    );
    // A depositor without a channel: the artist was never credited.
    let update = s.update(Intent::Deposit, 3, "1.5", "0.2");
    let signed = s.by_both(update);
    let result = s
        .client
        .submit_deposit_state(&SubmitDepositState {
            app_state_update: signed.app_state_update,
            quorum_sigs: signed.quorum_sigs,
            user_state: Double::user_state(s.artist.address(), s.id, USDC, usdc("0.2")),
        })
        .await;
    assert_refused(result, "user has no active channel", NodeErrorKind::Other);
    // A channel state that commits to another session.
    let update = s.update(Intent::Deposit, 3, "1.7", "0");
    let signed = s.by_both(update);
    let elsewhere = B256::repeat_byte(0x11);
    let result = s
        .client
        .submit_deposit_state(&SubmitDepositState {
            app_state_update: signed.app_state_update,
            quorum_sigs: signed.quorum_sigs,
            user_state: Double::user_state(s.listener.address(), elsewhere, USDC, usdc("0.2")),
        })
        .await;
    assert_refused(
        result,
        &format!(
            "user state transition account ID '{}' does not match app session ID '{}'",
            lower(elsewhere),
            lower(s.id)
        ),
        NodeErrorKind::Other,
    );

    assert_eq!(s.double.session(s.id).unwrap(), before);
    assert_eq!(s.double.balance(s.listener.address(), USDC), balance);
    // A correct top-up still goes through.
    s.deposit(usdc("1.9"), usdc("0.4")).await.unwrap();
    assert_eq!(s.double.balance(s.listener.address(), USDC), usdc("0.1"));
    assert_eq!(s.double.session(s.id).unwrap().version, 3);
}

#[tokio::test]
async fn creation_rules() {
    let double = Double::start(DoubleConfig::default()).await.unwrap();
    let client = connect(&double).await;
    let (a, b) = (PrivateKeySigner::random(), PrivateKeySigner::random());
    let definition = |application_id: &str, weights: [u8; 2], quorum: u8| AppDefinition {
        application_id: application_id.into(),
        participants: vec![
            Participant { wallet_address: a.address(), signature_weight: weights[0] },
            Participant { wallet_address: b.address(), signature_weight: weights[1] },
        ],
        quorum,
        nonce: U64String(7),
    };
    let create = |definition: AppDefinition, signers: &[&PrivateKeySigner]| {
        let hash = definition.creation_hash("");
        CreateAppSession {
            quorum_sigs: signers
                .iter()
                .map(|s| QuorumSig::sign(s, SignerKind::Wallet, hash))
                .collect(),
            definition,
            session_data: String::new(),
        }
    };
    let refused = [
        (
            create(definition("Beat", [1, 1], 1), &[&a]),
            "invalid application id: must match ^[a-z0-9_-]{1,66}$",
        ),
        (create(definition(APP, [1, 1], 0), &[&a]), "quorum must be greater than zero"),
        (
            create(definition(APP, [1, 1], 3), &[&a]),
            "target quorum (3) cannot be greater than total sum of weights (2)",
        ),
        (create(definition(APP, [1, 1], 2), &[]), "no signatures provided"),
        (create(definition(APP, [1, 1], 2), &[&a]), "quorum not met: achieved 1, required 2"),
        (create(definition(APP, [1, 1], 2), &[&a, &a]), "quorum not met: achieved 1, required 2"),
        (
            create(definition(APP, [1, 1], 2), &[&a, &b, &a]),
            "quorum_sigs count (3) exceeds participants count (2)",
        ),
    ];
    for (req, message) in refused {
        match client.create_app_session(&req).await {
            Err(Error::Node(e)) => assert_eq!(e.message, message),
            other => panic!("{message}: {other:?}"),
        }
    }
    // Weights above 255 in total do not wrap: 200 + 200 reach a quorum of 255.
    let heavy = create(definition(APP, [200, 200], 255), &[&a, &b]);
    client.create_app_session(&heavy).await.unwrap();
    let ok = create(definition(APP, [1, 0], 1), &[&a]);
    let created = client.create_app_session(&ok).await.unwrap();
    assert_eq!(double.session(created.app_session_id).unwrap().version, 1);
    match client.create_app_session(&ok).await {
        Err(Error::Node(e)) => {
            assert!(e.message.starts_with("failed to create app session"), "{e}")
        }
        other => panic!("created twice: {other:?}"),
    }
    let mut duplicate = serde_json::to_value(&ok).unwrap();
    duplicate["definition"]["participants"][1]["wallet_address"] =
        json!(a.address().to_checksum(None));
    match client.request_raw(methods::CREATE_APP_SESSION, duplicate).await {
        Err(Error::Node(e)) => assert_eq!(
            e.message,
            format!("duplicate participant address: {}", a.address().to_checksum(None))
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(double.accepted(methods::CREATE_APP_SESSION), 2);
}

#[tokio::test]
async fn malformed_frames_get_error_answers() {
    let double = Double::start(DoubleConfig::default()).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(double.url().as_str()).await.unwrap();
    async fn ask(
        ws: &mut tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        text: &str,
    ) -> Value {
        ws.send(Frame::text(text)).await.unwrap();
        loop {
            match ws.next().await.unwrap().unwrap() {
                Frame::Text(answer) => return serde_json::from_str(answer.as_str()).unwrap(),
                Frame::Ping(_) | Frame::Pong(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }
    let invalid = json!({ "error": "invalid message format" });
    for (frame, id) in [
        ("not json", 0),
        (r#"{"req":[1,"node.v1.ping",{}]}"#, 0),
        (r#"[1,7,"node.v1.ping",{}]"#, 0),
        (r#"[1,7,"node.v1.ping",[],1]"#, 7),
        (r#"[1,8,"node.v1.ping","{}",1]"#, 8),
    ] {
        let answer = ask(&mut ws, frame).await;
        assert_eq!(
            answer.as_array().unwrap()[..4],
            [json!(4), json!(id), json!(""), invalid.clone()],
            "{frame}"
        );
    }
    let answer = ask(&mut ws, r#"[1,9,"no.such.method",{},1]"#).await;
    assert_eq!(
        answer.as_array().unwrap()[..4],
        [
            json!(4),
            json!(9),
            json!("no.such.method"),
            json!({ "error": "unknown method: no.such.method" })
        ]
    );
    let answer = ask(&mut ws, r#"[1,10,"node.v1.ping",{},1]"#).await;
    assert_eq!(
        answer.as_array().unwrap()[..4],
        [json!(2), json!(10), json!("node.v1.ping"), json!({})]
    );
    let answer = ask(
        &mut ws,
        r#"[1,11,"app_sessions.v1.submit_app_state",{"app_state_update":{"intent":"operate"}},1]"#,
    )
    .await;
    assert_eq!(answer[3], json!({ "error": "failed to parse parameters" }));

    // A frame over 128 KiB closes the connection with 1009.
    ws.send(Frame::text("x".repeat(129 * 1024))).await.unwrap();
    loop {
        match ws.next().await {
            Some(Ok(Frame::Close(Some(close)))) => {
                assert_eq!(close.code, CloseCode::Size);
                break;
            }
            Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    // Only the RPC path, and only a valid app_id.
    let base = double.url();
    let mut other_path = base.clone();
    other_path.set_path("/v2/ws");
    assert!(tokio_tungstenite::connect_async(other_path.as_str()).await.is_err());
    assert!(tokio_tungstenite::connect_async(format!("{base}?app_id=Not_Valid")).await.is_err());
    assert!(tokio_tungstenite::connect_async(format!("{base}?app_id={APP}")).await.is_ok());
}

#[tokio::test]
async fn app_session_keys_sign_for_their_wallet() {
    let s = Stream::open().await;
    let session_key = PrivateKeySigner::random();
    let app_key = PrivateKeySigner::random();
    let key_and_operator = |key: &PrivateKeySigner, version: u64, listener: &str, artist: &str| {
        s.signed(
            s.update(Intent::Operate, version, listener, artist),
            &[(key, SignerKind::SessionKey), (&s.operator, SignerKind::Wallet)],
        )
    };

    // A key scoped to this session, and one scoped to the application.
    let scoped = AppSessionKeyState::sign(
        &s.listener,
        &session_key,
        1,
        Vec::new(),
        vec![lower(s.id)],
        now() + 3600,
    );
    s.client.submit_session_key_state(&scoped).await.unwrap();
    let by_app = AppSessionKeyState::sign(
        &s.listener,
        &app_key,
        1,
        vec![APP.into()],
        Vec::new(),
        now() + 3600,
    );
    s.client.submit_session_key_state(&by_app).await.unwrap();
    let mut listed = s.client.get_last_key_states(s.listener.address()).await.unwrap();
    listed.sort_by_key(|state| state.session_key);
    let mut expected = vec![scoped.clone(), by_app.clone()];
    expected.sort_by_key(|state| state.session_key);
    assert_eq!(listed, expected);

    s.client.submit_app_state(&key_and_operator(&session_key, 3, "1.4", "0.1")).await.unwrap();
    s.client.submit_app_state(&key_and_operator(&app_key, 4, "1.3", "0.2")).await.unwrap();
    assert_eq!(s.version(), 4);

    // Key-state rules.
    assert_refused(
        s.client.submit_session_key_state(&scoped).await,
        "invalid_session_key_state: expected version 2, got 1",
        NodeErrorKind::Version,
    );
    let mut unproven = AppSessionKeyState::sign(
        &s.listener,
        &PrivateKeySigner::random(),
        1,
        vec![APP.into()],
        Vec::new(),
        now() + 3600,
    );
    unproven.session_key_sig = None;
    assert_refused(
        s.client.submit_session_key_state(&unproven).await,
        "invalid_session_key_state: session_key_sig is required",
        NodeErrorKind::Other,
    );
    let mut forged = by_app.clone();
    forged.version = U64String(2);
    assert_refused(
        s.client.submit_session_key_state(&forged).await,
        "invalid_session_key_state: user_sig does not match user_address",
        NodeErrorKind::Other,
    );
    let taken = AppSessionKeyState::sign(
        &s.operator,
        &session_key,
        1,
        vec![APP.into()],
        Vec::new(),
        now() + 3600,
    );
    assert_refused(
        s.client.submit_session_key_state(&taken).await,
        "invalid_session_key_state: session_key not allowed",
        NodeErrorKind::Other,
    );

    // Revoked: the wallet alone signs a past expiry; the key no longer signs.
    let revoked = AppSessionKeyState::revocation(&s.listener, session_key.address(), 2, now() - 1);
    s.client.submit_session_key_state(&revoked).await.unwrap();
    assert_eq!(
        s.client.get_last_key_states(s.listener.address()).await.unwrap(),
        vec![by_app.clone()]
    );
    let no_key = format!(
        "failed to recover user wallet: no active session key found for key {} and app session {}",
        lower(session_key.address()),
        lower(s.id)
    );
    assert_refused(
        s.client.submit_app_state(&key_and_operator(&session_key, 5, "1.2", "0.3")).await,
        &no_key,
        NodeErrorKind::Signature,
    );

    // Expired: a key that lives two seconds signs, then does not.
    let brief_key = PrivateKeySigner::random();
    let expires_at = now() + 2;
    let brief = AppSessionKeyState::sign(
        &s.listener,
        &brief_key,
        1,
        Vec::new(),
        vec![lower(s.id)],
        expires_at,
    );
    s.client.submit_session_key_state(&brief).await.unwrap();
    s.client.submit_app_state(&key_and_operator(&brief_key, 5, "1.2", "0.3")).await.unwrap();
    while now() < expires_at {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_refused(
        s.client.submit_app_state(&key_and_operator(&brief_key, 6, "1.1", "0.4")).await,
        &format!(
            "failed to recover user wallet: no active session key found for key {} and app session {}",
            lower(brief_key.address()),
            lower(s.id)
        ),
        NodeErrorKind::Signature,
    );
    assert_eq!(s.version(), 5);

    // An application-scoped key also signs a new session's creation for its wallet.
    let definition =
        AppDefinition { nonce: U64String(s.definition.nonce.0 + 1), ..s.definition.clone() };
    let hash = definition.creation_hash("");
    let created = s
        .client
        .create_app_session(&CreateAppSession {
            definition,
            session_data: String::new(),
            quorum_sigs: vec![
                QuorumSig::sign(&app_key, SignerKind::SessionKey, hash),
                QuorumSig::sign(&s.operator, SignerKind::Wallet, hash),
            ],
        })
        .await
        .unwrap();
    assert!(s.double.session(created.app_session_id).is_some());
}

#[tokio::test]
async fn injected_failures_are_node_errors() {
    let s = Stream::open().await;
    s.double.fail_next(methods::PING, "maintenance", 2);
    for _ in 0..2 {
        match s.client.ping().await {
            Err(Error::Node(e)) => {
                assert_eq!((e.method.as_str(), e.message.as_str()), (methods::PING, "maintenance"));
            }
            other => panic!("expected the injected failure, got {other:?}"),
        }
    }
    s.client.ping().await.unwrap();

    s.double.fail_next(methods::SUBMIT_APP_STATE, "busy", 1);
    let update = s.update(Intent::Operate, 3, "1.4", "0.1");
    assert_refused(s.submit(update.clone()).await, "busy", NodeErrorKind::Other);
    assert_eq!(s.version(), 2);
    s.submit(update).await.unwrap();
    assert_eq!(s.version(), 3);
    assert_eq!(s.double.accepted(methods::SUBMIT_APP_STATE), 1);
}

#[tokio::test]
async fn the_client_rides_out_a_node_restart() {
    let s = Stream::open().await;
    s.client.ping().await.unwrap();
    s.double.stop().await;
    let mut status = s.client.watch_status();
    tokio::time::timeout(Duration::from_secs(5), status.wait_for(|st| *st == Status::Connecting))
        .await
        .expect("the client sees the node go")
        .unwrap();
    match s.client.ping().await {
        Err(Error::Disconnected | Error::Timeout { .. }) => {}
        other => panic!("expected no answer from a stopped node, got {other:?}"),
    }
    assert!(tokio_tungstenite::connect_async(s.double.url().as_str()).await.is_err());

    s.double.restart().await.unwrap();
    s.client.wait_connected(Duration::from_secs(15)).await.unwrap();
    s.client.ping().await.unwrap();
    // The node kept its state.
    let info = s.client.get_app_session(s.id).await.unwrap().unwrap();
    assert_eq!(info.version, U64String(2));
    s.submit(s.update(Intent::Operate, 3, "1.4", "0.1")).await.unwrap();
    assert_eq!(s.double.balance(s.listener.address(), USDC), usdc("0.5"));
}
