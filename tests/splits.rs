//! Splits and tips, every part real (issue 20): an artist publishes a track with a two-way split; a listener streams
//! it over the relay; the artist changes the split to three recipients; the listener streams again and tips the
//! split with a message; the keeper settles vouchers and the tip on anvil; the indexer mirrors it; each recipient's
//! earnings on-chain equal what GraphQL reports, per split version and in total, to the base unit, and the tip shows
//! with its message as sent.

use std::time::Duration;

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use beatstream_primitives::{
    SessionGrant, VoucherDomain, contracts::BeatStreamRegistry::TrackInput,
};
use beatstream_stream_relay::protocol::{ClientFrame, ServerFrame, Uint};
use beatstream_testkit::{
    Anvil, TestDb,
    scene::{Chain, USDC},
};
use futures_util::SinkExt;
use serde_json::json;
use support::{Services, Ws, graphql, recv};
use tokio_tungstenite::{connect_async, tungstenite::Message};
use tokio_util::sync::CancellationToken;

mod support;

const ARTIST: usize = 1;
const VOCALIST: usize = 4;
const PRODUCER: usize = 5;
const LISTENER: usize = 3;
const KEEPER: usize = 7;
const RATE: u64 = 3_333; // base units a second: odd, so the splits round
const TIP: u64 = 1_234_567;
const MESSAGE: &str = "¡Qué voz! <b>encore</b> & \"more\" 🎶";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_track_pays_each_version_exactly_and_a_tip_shows_its_message() -> eyre::Result<()> {
    let chain = Chain::with(Anvil::spawn()?, &[("BEATSTREAM_FEE_BPS", "250")]).await?;
    let db = TestDb::new().await?;
    let stop = CancellationToken::new();
    let keeper_options = beatstream_keeper::Options {
        payee_threshold: 1,
        max_interval_secs: 1,
        confirmations: 0,
        poll_ms: 200,
        ..Default::default()
    };
    let services = Services::start(&chain, &db, KEEPER, keeper_options, &stop).await?;
    let (artist, vocalist, producer) =
        (chain.anvil.signer(ARTIST), chain.anvil.signer(VOCALIST), chain.anvil.signer(PRODUCER));

    // ----- The artist publishes a track and splits it 60/40 with the vocalist. -----
    let node = chain.register(&artist, "duo", RATE).await?;
    let track = TrackInput {
        title: "Harmony".into(),
        duration: 600,
        ratePerSecond: 0,
        contentHash: keccak256("Harmony"),
        metadataURI: "ipfs://harmony".into(),
    };
    assert!(
        chain
            .registry(&artist)
            .publishTrack(node, track)
            .send()
            .await?
            .get_receipt()
            .await?
            .status()
    );
    let track_id = U256::from(1);
    let vault = chain.vault(&artist);
    let v1 = [(artist.address(), 6_000u16), (vocalist.address(), 4_000)];
    set_split(&chain, &artist, node, track_id, &v1).await?;
    let split_1 = vault.splitPayee(node, track_id, 1).call().await?;
    assert_eq!(vault.playPayee(track_id).call().await?, split_1);

    // ----- A listener streams 7 seconds under version 1. -----
    let listener = chain.anvil.signer(LISTENER);
    chain.fund(&listener, 20 * USDC).await?;
    services.indexed(&chain).await?;
    let key = PrivateKeySigner::random();
    let grant = SessionGrant {
        listener: listener.address(),
        sessionKey: key.address(),
        cap: U256::from(10 * USDC),
        expiresAt: chain.now().await? + 86_400,
        nonce: 1,
    };
    let domain = chain.domain();
    let (mut ws, _) = connect_async(format!("ws://{}/ws/stream", services.relay_addr)).await?;
    ws.send(text(ClientFrame::hello(&grant, &domain.sign_grant(&listener, &grant)?))).await?;
    assert!(matches!(recv(&mut ws).await?, ServerFrame::Ready { .. }));
    let paid_1 = stream(&mut ws, &domain, &key, &grant, split_1, 7).await?;
    assert_eq!(paid_1, 7 * RATE);

    // ----- The artist changes the split: 50/30/20 with a producer. New plays pay version 2. -----
    let v2 =
        [(artist.address(), 5_000u16), (vocalist.address(), 3_000), (producer.address(), 2_000)];
    set_split(&chain, &artist, node, track_id, &v2).await?;
    let split_2 = vault.splitPayee(node, track_id, 2).call().await?;
    assert_ne!(split_1, split_2);
    services.indexed(&chain).await?;
    // The relay caches a track's terms for up to 10 s: new plays name version 2 once it has looked again.
    // A play that still names version 1 is superseded by the next one.
    let mut tries = 0;
    let session = loop {
        let (session, payee) = play(&mut ws).await?;
        if payee == split_2 {
            break session;
        }
        tries += 1;
        eyre::ensure!(tries < 30, "the relay never named the new split");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let paid_2 = stream_session(&mut ws, &domain, &key, &grant, &session, split_2, 11).await?;
    assert_eq!(paid_2, 11 * RATE);

    // ----- A tip to the split, with a message. -----
    let sig = domain.sign_tip(
        &key,
        grant.id(),
        split_2,
        U256::from(1),
        U256::from(TIP),
        MESSAGE.as_bytes(),
    )?;
    ws.send(text(ClientFrame::tip(
        grant.id(),
        split_2,
        U256::from(1),
        U256::from(TIP),
        MESSAGE,
        &sig,
    )))
    .await?;
    loop {
        match recv(&mut ws).await? {
            ServerFrame::TipAck { tip_id, .. } if tip_id == "1" => break,
            ServerFrame::Error { code, message } => eyre::bail!("tip refused: {code}: {message}"),
            _ => {}
        }
    }

    // ----- The keeper settles both versions' vouchers and the tip. -----
    for _ in 0..300 {
        if vault.settled(grant.id(), split_1).call().await? == U256::from(paid_1)
            && vault.settled(grant.id(), split_2).call().await? == U256::from(paid_2)
            && vault.isTipSettled(grant.id(), U256::from(1)).call().await?
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(vault.settled(grant.id(), split_1).call().await?, U256::from(paid_1));
    assert_eq!(vault.settled(grant.id(), split_2).call().await?, U256::from(paid_2));
    assert!(vault.isTipSettled(grant.id(), U256::from(1)).call().await?, "the tip settled");
    services.indexed(&chain).await?;

    // On-chain: each version's SplitPaid parts, and what each recipient can withdraw (earningsOf); a split payee
    // itself holds nothing.
    let mut per_version: std::collections::HashMap<(Address, Address), U256> = Default::default();
    let mut settled_total = U256::ZERO;
    for (paid, _) in vault.SplitPaid_filter().from_block(0).query().await? {
        let recipients = if paid.split == split_1 { &v1[..] } else { &v2[..] };
        assert_eq!(paid.parts.len(), recipients.len());
        assert_eq!(
            paid.parts.iter().copied().sum::<U256>(),
            paid.amount,
            "parts sum to the amount"
        );
        for ((recipient, _), part) in recipients.iter().zip(&paid.parts) {
            *per_version.entry((paid.split, *recipient)).or_default() += *part;
        }
        settled_total += paid.amount;
    }
    let fee_bps = U256::from(vault.feeBps().call().await?);
    let fees = vault.accruedFees().call().await?;
    assert_eq!(vault.earningsOf(split_1).call().await?, U256::ZERO);
    assert_eq!(vault.earningsOf(split_2).call().await?, U256::ZERO);
    assert_eq!(
        settled_total + fees,
        U256::from(paid_1 + paid_2 + TIP),
        "everything settled reached the recipients or the fee"
    );
    // The fee is taken once per settlement and tip, before the split: the events' fees are the vault's rule and
    // add up to what it accrued.
    let mut fee_sum = U256::ZERO;
    for (settled, _) in vault.Settled_filter().from_block(0).query().await? {
        assert_eq!(settled.fee, settled.amount * fee_bps / U256::from(10_000));
        fee_sum += settled.fee;
    }
    for (tipped, _) in vault.Tipped_filter().from_block(0).query().await? {
        assert_eq!(tipped.fee, tipped.amount * fee_bps / U256::from(10_000));
        assert_eq!(tipped.message, MESSAGE);
        fee_sum += tipped.fee;
    }
    assert_eq!(fee_sum, fees);

    // ----- GraphQL reports the same, to the base unit. -----
    let data = graphql(
        services.api_addr,
        r#"query {
            artist(name: "duo") {
                splits(first: 10) { edges { node { payee version trackId inForce
                                                   recipients { address share earned { raw } } } } }
                tips(first: 10) { edges { node { message amount { raw } tipId listener payee } } }
                supporters(first: 10) { edges { node { listener total { raw } tipped { raw } tips } } }
            }
        }"#,
        json!({}),
    )
    .await?;
    let splits: Vec<serde_json::Value> = data["artist"]["splits"]["edges"]
        .as_array()
        .expect("splits")
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    assert_eq!(splits.len(), 2, "{splits:?}");
    for split in &splits {
        let address: Address = split["payee"].as_str().unwrap().parse()?;
        assert_eq!(split["trackId"], "1");
        let version = split["version"].as_u64().unwrap();
        assert_eq!(address, if version == 1 { split_1 } else { split_2 });
        assert_eq!(split["inForce"], json!(version == 2));
        let shares = if version == 1 { &v1[..] } else { &v2[..] };
        let recipients = split["recipients"].as_array().unwrap();
        assert_eq!(recipients.len(), shares.len());
        for (r, (expected, share)) in recipients.iter().zip(shares) {
            let who: Address = r["address"].as_str().unwrap().parse()?;
            assert_eq!((who, r["share"].as_u64().unwrap()), (*expected, u64::from(*share)));
            let on_chain = per_version.get(&(address, who)).copied().unwrap_or_default();
            assert_eq!(r["earned"]["raw"], on_chain.to_string(), "v{version} {who}");
        }
    }
    // Each recipient's total over both versions is exactly what the vault lets it withdraw.
    for who in [artist.address(), vocalist.address(), producer.address()] {
        let reported: U256 = splits
            .iter()
            .flat_map(|s| s["recipients"].as_array().unwrap().iter())
            .filter(|r| r["address"].as_str().unwrap().parse::<Address>().unwrap() == who)
            .map(|r| r["earned"]["raw"].as_str().unwrap().parse::<U256>().unwrap())
            .sum();
        assert_eq!(reported, vault.earningsOf(who).call().await?, "earnings of {who}");
    }
    let tip = &data["artist"]["tips"]["edges"][0]["node"];
    assert_eq!(tip["message"], MESSAGE, "the message as sent, unescaped");
    assert_eq!(tip["amount"]["raw"], TIP.to_string());
    let supporter = &data["artist"]["supporters"]["edges"][0]["node"];
    assert_eq!(supporter["listener"].as_str().unwrap().parse::<Address>()?, listener.address());
    assert_eq!(supporter["total"]["raw"], (paid_1 + paid_2 + TIP).to_string());
    assert_eq!(supporter["tipped"]["raw"], TIP.to_string());

    stop.cancel();
    services.join().await
}

async fn set_split(
    chain: &Chain,
    artist: &PrivateKeySigner,
    node: B256,
    track_id: U256,
    split: &[(Address, u16)],
) -> eyre::Result<()> {
    let recipients = split.iter().map(|(a, _)| *a).collect();
    let shares = split.iter().map(|(_, s)| *s).collect();
    let r = chain
        .vault(artist)
        .setSplit(node, track_id, recipients, shares)
        .send()
        .await?
        .get_receipt()
        .await?;
    eyre::ensure!(r.status(), "setSplit reverted");
    Ok(())
}

fn text(frame: ClientFrame) -> Message {
    Message::text(frame.to_json())
}

/// Plays track 1; returns the session id and its payee.
async fn play(ws: &mut Ws) -> eyre::Result<(String, Address)> {
    ws.send(text(ClientFrame::Play { track_id: Uint("1".into()), from: None, beats: None }))
        .await?;
    loop {
        if let ServerFrame::Session { session_id, payee, .. } = recv(ws).await? {
            return Ok((session_id, payee.parse()?));
        }
    }
}

/// Plays track 1, expects `payee`, and pays `seconds` seconds before stopping; returns what the session paid.
async fn stream(
    ws: &mut Ws,
    domain: &VoucherDomain,
    key: &PrivateKeySigner,
    grant: &SessionGrant,
    payee: Address,
    seconds: u64,
) -> eyre::Result<u64> {
    let (session, named) = play(ws).await?;
    assert_eq!(named, payee, "the session names the split in force");
    stream_session(ws, domain, key, grant, &session, payee, seconds).await
}

/// Pays `seconds` beats of `session` (a voucher per beat), waits for the last ack and stops it; returns what the
/// session paid.
async fn stream_session(
    ws: &mut Ws,
    domain: &VoucherDomain,
    key: &PrivateKeySigner,
    grant: &SessionGrant,
    session: &str,
    payee: Address,
    seconds: u64,
) -> eyre::Result<u64> {
    let mut beats = 0;
    let mut paid = 0u64;
    while beats < seconds {
        match recv(ws).await? {
            ServerFrame::Beat { owed, session_id, .. } if session_id == session => {
                let owed: u64 = owed.parse()?;
                let sig = domain.sign_voucher(key, grant.id(), payee, U256::from(owed))?;
                ws.send(text(ClientFrame::voucher(grant.id(), payee, U256::from(owed), &sig)))
                    .await?;
                (beats, paid) = (beats + 1, owed);
            }
            ServerFrame::Error { code, message } => eyre::bail!("{code}: {message}"),
            _ => {}
        }
    }
    loop {
        if let ServerFrame::Ack { cumulative, session_id, .. } = recv(ws).await?
            && session_id == session
            && cumulative == paid.to_string()
        {
            break;
        }
    }
    ws.send(text(ClientFrame::Stop { session_id: session.to_owned() })).await?;
    loop {
        if let ServerFrame::Closed { total, session_id } = recv(ws).await?
            && session_id == session
        {
            return Ok(total.parse()?);
        }
    }
}
