//! The whole path, every part real: an artist registers `neon.beatstream.eth` with records and publishes a track; a
//! listener deposits USDC with an EIP-2612 permit; the listener's player streams ten seconds over the relay with
//! session-key vouchers; the keeper settles them on anvil; the indexer mirrors it; GraphQL shows the artist's
//! earnings, the session and the listener's balance as the chain has them; the artist withdraws earnings; the
//! listener requests the rest back and withdraws it after the delay (anvil time travel).

use std::time::Duration;

use alloy::{
    primitives::{Address, U256, keccak256},
    signers::{Signer, local::PrivateKeySigner},
    sol,
    sol_types::{Eip712Domain, SolStruct},
};
use beatstream_primitives::{
    SessionGrant,
    contracts::BeatStreamRegistry::{TextRecord, TrackInput},
};
use beatstream_stream_relay::protocol::{ClientFrame, ServerFrame, Uint};
use beatstream_testkit::{
    Anvil, TestDb,
    scene::{Chain, USDC},
};
use futures_util::SinkExt;
use serde_json::json;
use support::{Services, graphql, recv};
use tokio_tungstenite::{connect_async, tungstenite::Message};
use tokio_util::sync::CancellationToken;

mod support;

const ARTIST: usize = 1;
const LISTENER: usize = 3;
const KEEPER: usize = 7;
const RATE: u64 = 2_500; // base units a second: 0.0025 USDC
const DELAY: u64 = 3_600;

sol! {
    struct Permit {
        address owner;
        address spender;
        uint256 value;
        uint256 nonce;
        uint256 deadline;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_paid_settled_mirrored_shown_and_withdrawn() -> eyre::Result<()> {
    let chain = Chain::with(
        Anvil::spawn()?,
        &[("BEATSTREAM_FEE_BPS", "250"), ("BEATSTREAM_WITHDRAWAL_DELAY", &DELAY.to_string())],
    )
    .await?;
    let db = TestDb::new().await?;
    let stop = CancellationToken::new();
    let contracts = chain.deployment.contracts;

    // ----- Every service, in this process. -----
    // A batch once 8 s of this track are vouched, and whatever is left two seconds after the last batch.
    let keeper_options = beatstream_keeper::Options {
        payee_threshold: 20_000,
        max_interval_secs: 2,
        confirmations: 0,
        poll_ms: 200,
        ..Default::default()
    };
    let services = Services::start(&chain, &db, KEEPER, keeper_options, &stop).await?;
    let (relay_addr, api_addr) = (services.relay_addr, services.api_addr);
    let indexed = || services.indexed(&chain);

    // ----- The artist registers a name with records and publishes a track. -----
    let artist = chain.anvil.signer(ARTIST);
    let registry = chain.registry(&artist);
    let records = vec![
        TextRecord { key: "avatar".into(), value: "ipfs://neon-avatar".into() },
        TextRecord { key: "genre".into(), value: "synthwave".into() },
    ];
    let node = beatstream_primitives::register_artist(
        &registry,
        artist.address(),
        "neon",
        U256::from(RATE),
        records,
    )
    .await?;
    let track = TrackInput {
        title: "Night Drive".into(),
        duration: 200,
        ratePerSecond: 0,
        contentHash: keccak256("Night Drive"),
        metadataURI: "ipfs://night-drive".into(),
    };
    assert!(registry.publishTrack(node, track).send().await?.get_receipt().await?.status());

    // ----- The listener deposits 20 USDC with a permit: one transaction, no approval. -----
    let listener = chain.anvil.signer(LISTENER);
    let usdc = chain.usdc(&listener);
    let deposit = U256::from(20 * USDC);
    assert!(usdc.mint(listener.address(), deposit).send().await?.get_receipt().await?.status());
    let deadline = U256::from(chain.now().await? + 3_600);
    let permit = Permit {
        owner: listener.address(),
        spender: contracts.vault,
        value: deposit,
        nonce: usdc.nonces(listener.address()).call().await?,
        deadline,
    };
    let domain = Eip712Domain::new(
        Some("Mock USD Coin".into()),
        Some("1".into()),
        Some(U256::from(chain.deployment.chain_id)),
        Some(contracts.usdc),
        None,
    );
    let sig = listener.sign_hash(&permit.eip712_signing_hash(&domain)).await?;
    let vault = chain.vault(&listener);
    let receipt = vault
        .depositWithPermit(
            deposit,
            deadline,
            27 + u8::from(sig.v()),
            sig.r().into(),
            sig.s().into(),
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(receipt.status(), "depositWithPermit reverted");
    indexed().await?;

    // ----- The player streams ten seconds over the relay, a voucher each second. -----
    let key = PrivateKeySigner::random();
    let grant = SessionGrant {
        listener: listener.address(),
        sessionKey: key.address(),
        cap: U256::from(10 * USDC),
        expiresAt: chain.now().await? + 86_400,
        nonce: 1,
    };
    let voucher_domain = chain.domain();
    let grant_sig = voucher_domain.sign_grant(&listener, &grant)?;
    let (mut ws, _) = connect_async(format!("ws://{relay_addr}/ws/stream")).await?;
    let send = |frame: ClientFrame| Message::text(frame.to_json());
    ws.send(send(ClientFrame::hello(&grant, &grant_sig))).await?;
    let frame = recv(&mut ws).await?;
    assert!(matches!(frame, ServerFrame::Ready { .. }), "{frame:?}");
    ws.send(send(ClientFrame::Play { track_id: Uint("1".into()), from: None, beats: None }))
        .await?;
    let (session_id, payee) = match recv(&mut ws).await? {
        ServerFrame::Session { session_id, payee, .. } => (session_id, payee.parse::<Address>()?),
        other => eyre::bail!("expected session, got {other:?}"),
    };
    assert_eq!(payee, artist.address(), "the track pays the artist's addr record");
    let mut paid = 0u64;
    while paid < 10 * RATE {
        match recv(&mut ws).await? {
            ServerFrame::Beat { owed, .. } => {
                let owed: u64 = owed.parse()?;
                let sig = voucher_domain.sign_voucher(&key, grant.id(), payee, U256::from(owed))?;
                ws.send(send(ClientFrame::voucher(grant.id(), payee, U256::from(owed), &sig)))
                    .await?;
                paid = owed;
            }
            ServerFrame::Ack { .. } => {}
            other => eyre::bail!("unexpected {other:?}"),
        }
    }
    // Acked before it stops.
    loop {
        if let ServerFrame::Ack { cumulative, .. } = recv(&mut ws).await?
            && cumulative == paid.to_string()
        {
            break;
        }
    }
    ws.send(send(ClientFrame::Stop { session_id: session_id.clone() })).await?;
    let total = loop {
        match recv(&mut ws).await? {
            ServerFrame::Closed { total, .. } => break total,
            _ => continue,
        }
    };
    assert_eq!(total, (10 * RATE).to_string());

    // ----- The keeper settles; the indexer mirrors it. -----
    // All ten seconds settle, in one or more batches (the keeper decides when).
    let total = U256::from(10 * RATE);
    for _ in 0..300 {
        if chain.vault(&artist).settled(grant.id(), payee).call().await? == total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(chain.vault(&artist).settled(grant.id(), payee).call().await?, total);
    // The vault's fee rule, exactly: each settlement of `amount` takes `amount * feeBps / 10_000`, rounded down per
    // settlement, with the fee in force (250 bps from the deployment; none is scheduled here). The settled amounts
    // are the `Settled` events'.
    let fee_bps = chain.vault(&artist).feeBps().call().await?;
    assert_eq!(fee_bps, 250, "the deployment's fee is in force");
    let settlements = chain.vault(&artist).Settled_filter().from_block(0).query().await?;
    assert!(!settlements.is_empty(), "no Settled event");
    let (mut settled_sum, mut expected_fees) = (U256::ZERO, U256::ZERO);
    for (event, _) in &settlements {
        assert_eq!(
            (event.grantId, event.listener, event.payee),
            (grant.id(), listener.address(), payee)
        );
        let fee = event.amount * U256::from(fee_bps) / U256::from(10_000);
        assert_eq!(event.fee, fee, "fee of a settlement of {}", event.amount);
        settled_sum += event.amount;
        expected_fees += fee;
    }
    assert_eq!(settled_sum, total, "the settlements add up to the stream");
    assert!(expected_fees > U256::ZERO, "a 250 bps fee on {total} is not zero");
    let fees = chain.vault(&artist).accruedFees().call().await?;
    let earned = chain.vault(&artist).earningsOf(artist.address()).call().await?;
    assert_eq!(fees, expected_fees, "the vault accrued exactly the fees its rule takes");
    assert_eq!(earned, total - expected_fees, "the artist got exactly the total less the fees");
    assert!(services.keeper_metrics.batches_confirmed.get() >= 1);
    indexed().await?;

    // ----- GraphQL shows what the chain has. -----
    let data = graphql(
        api_addr,
        r#"query($listener: String!, $session: String!) {
            artist(name: "neon") { address texts { key value } earnings { earned { raw } withdrawable { raw } pending { raw } }
                                   stats { streams seconds uniqueListeners } }
            session(id: $session) { status seconds amount { raw } track { title } artist { name } }
            listener(address: $listener) { balance { available { raw } spent { raw } deposited { raw } } }
        }"#,
        json!({ "listener": listener.address().to_string(), "session": session_id }),
    )
    .await?;
    let account = vault.accountOf(listener.address()).call().await?;
    assert_eq!(data["artist"]["address"], artist.address().to_checksum(None));
    assert_eq!(data["artist"]["texts"][1], json!({ "key": "genre", "value": "synthwave" }));
    assert_eq!(data["artist"]["earnings"]["earned"]["raw"], earned.to_string());
    assert_eq!(data["artist"]["earnings"]["withdrawable"]["raw"], earned.to_string());
    assert_eq!(data["artist"]["earnings"]["pending"]["raw"], "0");
    assert_eq!(
        data["artist"]["stats"],
        json!({ "streams": 1, "seconds": 10, "uniqueListeners": 1 })
    );
    assert_eq!(
        data["session"],
        json!({ "status": "CLOSED", "seconds": 10, "amount": { "raw": (10 * RATE).to_string() },
                "track": { "title": "Night Drive" }, "artist": { "name": "neon.beatstream.eth" } })
    );
    assert_eq!(data["listener"]["balance"]["available"]["raw"], account.available.to_string());
    assert_eq!(data["listener"]["balance"]["spent"]["raw"], (10 * RATE).to_string());
    assert_eq!(data["listener"]["balance"]["deposited"]["raw"], deposit.to_string());

    // ----- The artist withdraws earnings. -----
    let payout = Address::repeat_byte(0x77);
    let r =
        chain.vault(&artist).withdrawEarnings(payout, earned).send().await?.get_receipt().await?;
    assert!(r.status());
    assert_eq!(chain.usdc(&artist).balanceOf(payout).call().await?, earned);

    // ----- The listener asks for the rest back and takes it after the delay. -----
    let rest = account.available;
    assert!(vault.requestWithdrawal(rest).send().await?.get_receipt().await?.status());
    chain.warp(DELAY + 1).await?;
    let before = usdc.balanceOf(listener.address()).call().await?;
    assert!(vault.withdraw(listener.address()).send().await?.get_receipt().await?.status());
    assert_eq!(usdc.balanceOf(listener.address()).call().await? - before, rest);
    indexed().await?;
    let data = graphql(
        api_addr,
        r#"query($listener: String!) {
            artist(name: "neon") { earnings { withdrawable { raw } withdrawn { raw } } }
            listener(address: $listener) { balance { available { raw } thawing { raw } withdrawn { raw } }
                                           withdrawals { edges { node { amount { raw } } } } }
        }"#,
        json!({ "listener": listener.address().to_string() }),
    )
    .await?;
    assert_eq!(data["artist"]["earnings"]["withdrawable"]["raw"], "0");
    assert_eq!(data["artist"]["earnings"]["withdrawn"]["raw"], earned.to_string());
    assert_eq!(data["listener"]["balance"]["available"]["raw"], "0");
    assert_eq!(data["listener"]["balance"]["thawing"]["raw"], "0");
    assert_eq!(data["listener"]["balance"]["withdrawn"]["raw"], rest.to_string());
    assert_eq!(
        data["listener"]["withdrawals"]["edges"][0]["node"]["amount"]["raw"],
        rest.to_string()
    );

    stop.cancel();
    services.join().await
}
