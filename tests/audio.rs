//! Music, end to end, every part real: an artist signs in to the studio with Ethereum (EIP-4361, `personal_sign`) and
//! uploads a WAV; the artist publishes the track on anvil with the upload's root as its `contentHash`; the indexer
//! mirrors it; a listener's player plays it through the relay with signed vouchers and collects the chunk keys the
//! acks carry; it fetches the encrypted chunks over HTTP from the node, checks them against the chain, decrypts them
//! with the released keys and gets back exactly the audio the track was cut into. Keys never run ahead of payment:
//! every ack carries only keys of seconds its voucher paid for, and after `stop` none come.

use std::{net::SocketAddr, time::Duration};

use alloy::{
    primitives::{B256, U256},
    signers::local::PrivateKeySigner,
};
use beatstream_audio::{ChunkKey, Chunker, Limits, Manifest, decode_chunk, decrypt_chunk, demo};
use beatstream_primitives::{
    SessionGrant, audio_key::AudioKeyArgs, contracts::BeatStreamRegistry::TrackInput,
    db::DatabaseArgs,
};
use beatstream_stream_relay::protocol::{ChunkKeyFrame, ClientFrame, ServerFrame, Uint};
use beatstream_studio::client::{ClientError, StudioClient};
use beatstream_testkit::{
    TestDb,
    scene::{Chain, USDC},
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::{connect_async, tungstenite::Message};
use tokio_util::sync::CancellationToken;

const ARTIST: usize = 1;
const LISTENER: usize = 3;
const STRANGER: usize = 4;
/// Base units a second: 0.001 USDC.
const RATE: u64 = 1_000;
/// The track's length: 9.5 s of generated music, so ten chunks, the last one half a second.
const TRACK_MS: u64 = 9_500;
/// Seconds the first play pays for before the listener stops.
const FIRST_PLAY: u64 = 4;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_track_is_heard_exactly_as_far_as_it_is_paid() -> eyre::Result<()> {
    beatstream_primitives::tls::install_crypto_provider();
    let chain = Chain::new().await?;
    let db = TestDb::new().await?;
    let dirs = tempfile::tempdir()?;
    let stop = CancellationToken::new();
    let deployment = chain.deployment_file.path().to_owned();
    // The node's audio key: the studio seals track secrets with it, the relay opens them.
    let audio_key = AudioKeyArgs {
        audio_key_file: None,
        audio_key: Some(alloy::hex::encode(PrivateKeySigner::random().to_bytes())),
    };

    // ----- The indexer, the relay, and the API with the studio on its address. -----
    let indexer_metrics = beatstream_indexer::Metrics::new();
    let indexer = tokio::spawn(beatstream_indexer::run_with_metrics(
        beatstream_indexer::Config {
            database: DatabaseArgs::new(db.url().to_owned()),
            rpc: chain.anvil.endpoint_url().into(),
            options: beatstream_indexer::Options {
                poll_interval_ms: 50,
                ..beatstream_indexer::Options::new(deployment.clone())
            },
        },
        indexer_metrics.clone(),
        stop.clone(),
    ));
    let mut relay_config =
        beatstream_stream_relay::Config::new(db.url().to_owned(), chain.anvil.endpoint_url());
    relay_config.options.listen = "127.0.0.1:0".parse()?;
    relay_config.deployment = Some(deployment.clone());
    relay_config.options.beat_ms = 250;
    relay_config.audio_key = audio_key.clone();
    let relay = beatstream_stream_relay::Server::bind(relay_config, stop.clone()).await?;
    let relay_addr = relay.local_addr()?;
    let relay = tokio::spawn(relay.serve());
    let api = beatstream_graphql_api::Server::bind(
        beatstream_graphql_api::Config {
            database: DatabaseArgs::new(db.url().to_owned()),
            rpc: Default::default(),
            deployment: deployment.clone(),
            chain_id: None,
            options: beatstream_graphql_api::Options {
                listen: "127.0.0.1:0".parse()?,
                ..Default::default()
            },
        },
        stop.clone(),
    )
    .await?;
    let node_addr = api.local_addr()?;
    let studio = beatstream_studio::Studio::connect(beatstream_studio::Config {
        database: DatabaseArgs::new(db.url().to_owned()),
        rpc: chain.anvil.endpoint_url().into(),
        deployment: deployment.clone(),
        audio_key,
        options: beatstream_studio::Options {
            domain: node_addr.to_string(),
            storage_url: dirs.path().join("audio").display().to_string(),
            upload_dir: Some(dirs.path().join("uploads")),
            ..Default::default()
        },
    })
    .await?;
    let api = tokio::spawn(api.with_routes(beatstream_studio::router(studio)).serve());
    let node = Node { addr: node_addr, http: reqwest::Client::new() };
    let indexed = || async {
        let head = chain.head().await? as i64;
        for _ in 0..600 {
            if indexer_metrics.indexed.get() >= head {
                return Ok::<_, eyre::Report>(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eyre::bail!("the indexer did not reach block {head}")
    };

    // ----- The artist registers `aurora`, signs in and uploads a WAV. -----
    let artist = chain.anvil.signer(ARTIST);
    let artist_node = chain.register(&artist, "aurora", RATE).await?;
    let wav = demo::track(7, TRACK_MS.div_ceil(1000) as u32);
    let wav = cut_to(&wav, TRACK_MS);
    let source = dirs.path().join("aurora.wav");
    std::fs::write(&source, &wav)?;

    // Someone who does not manage the name is refused, and nothing is stored.
    let chain_id = chain.deployment.chain_id;
    let stranger =
        StudioClient::sign_in(&node.base(), chain_id, &chain.anvil.signer(STRANGER)).await?;
    let refused = stranger.upload("aurora", "audio/wav", wav.clone()).await.unwrap_err();
    assert!(
        matches!(&refused, ClientError::Studio { status: 403, code, .. } if code == "not_manager"),
        "{refused}"
    );
    assert_eq!(count(&db, "audio_tracks").await?, 0);

    let studio = StudioClient::sign_in(&node.base(), chain_id, &artist).await?;
    let upload = studio.upload("aurora", "audio/wav", wav).await?;
    let (root, duration) = (upload.root, u64::from(upload.duration));
    assert_eq!(duration, TRACK_MS.div_ceil(1000), "the real duration, from the file");
    assert_eq!(upload.duration_ms, TRACK_MS);

    // ----- The artist publishes it: the root is the track's contentHash. -----
    let registry = chain.registry(&artist);
    let track = TrackInput {
        title: "Aurora".into(),
        duration: duration as u32,
        ratePerSecond: 0,
        contentHash: root,
        metadataURI: "ipfs://aurora".into(),
    };
    assert!(registry.publishTrack(artist_node, track).send().await?.get_receipt().await?.status());
    let track_id = U256::from(1);
    let on_chain = registry.track(track_id).call().await?;
    assert_eq!((on_chain.contentHash, on_chain.duration), (root, duration as u32));

    // ----- A funded listener; the indexer mirrors the track with its root. -----
    let listener = chain.anvil.signer(LISTENER);
    chain.fund(&listener, 10 * USDC).await?;
    indexed().await?;
    let mirrored = node
        .graphql(
            "query($id: String!) { track(id: $id) { contentHash duration } }",
            json!({ "id": "1" }),
        )
        .await?;
    assert_eq!(mirrored["track"]["contentHash"], json!(root.to_string()));
    assert_eq!(mirrored["track"]["duration"], json!(duration));

    // ----- The player checks the node's manifest against the chain before it plays. -----
    let manifest = node.manifest(root).await?;
    manifest.verify()?;
    assert_eq!(manifest.root, on_chain.contentHash, "the node serves the published track");
    assert_eq!(manifest.chunk_count, on_chain.duration, "one chunk per paid second");
    let plain: Vec<_> =
        Chunker::open(&source, &Limits::default())?.collect::<Result<Vec<_>, _>>()?;
    assert_eq!(plain.len(), manifest.chunk_count as usize);

    // The testkit's player: a fresh session key under a grant of the listener's, signed.
    let scene_player = beatstream_testkit::scene::Player::new(&chain, listener, 1).await?;
    let (mut ws, _) = connect_async(format!("ws://{relay_addr}/ws/stream")).await?;
    ws.send(text(ClientFrame::hello(&scene_player.grant, &scene_player.grant_sig))).await?;
    assert!(matches!(recv(&mut ws).await?, ServerFrame::Ready { .. }));
    let player =
        Player { key: scene_player.key, grant: scene_player.grant, domain: chain.domain() };

    // ----- First play: four seconds paid, then stop. Exactly chunks 0–3 are released. -----
    let first = player.play(&mut ws, Some(FIRST_PLAY)).await?;
    assert_eq!(indexes(&first.keys), (0..FIRST_PLAY as u32).collect::<Vec<_>>());
    // After `stop`, nothing more: beats would come every 250 ms, keys with them if any were sent.
    let quiet = tokio::time::timeout(Duration::from_millis(1_500), recv(&mut ws)).await;
    assert!(quiet.is_err(), "a frame after the session closed: {quiet:?}");

    // What was paid plays; what was not cannot be opened with anything the relay gave.
    for chunk in &first.keys {
        let stored = node.chunk(root, chunk.index).await?;
        manifest.verify_chunk(chunk.index, &stored)?;
        let opened = decrypt_chunk(&key_of(chunk)?, chunk.index, &stored)?;
        assert_eq!(opened, plain[chunk.index as usize].bytes, "chunk {}", chunk.index);
    }
    let unpaid = FIRST_PLAY as u32;
    let stored = node.chunk(root, unpaid).await?;
    manifest.verify_chunk(unpaid, &stored)?;
    for chunk in &first.keys {
        assert!(
            decrypt_chunk(&key_of(chunk)?, unpaid, &stored).is_err(),
            "chunk {unpaid} opened with the key of chunk {}",
            chunk.index
        );
    }
    // A chunk whose bytes are not the ones committed on-chain is refused before it is decrypted.
    let mut damaged = node.chunk(root, 0).await?;
    damaged[0] ^= 1;
    assert!(manifest.verify_chunk(0, &damaged).is_err(), "a damaged chunk verified");
    let swapped = node.chunk(root, 1).await?;
    assert!(manifest.verify_chunk(0, &swapped).is_err(), "chunk 1 verified as chunk 0");

    // ----- Second play, to the end of the track: every chunk, each once, in order. -----
    let whole = player.play(&mut ws, None).await?;
    assert_eq!(indexes(&whole.keys), (0..manifest.chunk_count).collect::<Vec<_>>());
    assert_eq!(whole.total, U256::from(duration * RATE), "the relay closed at the track's end");

    // The listener hears exactly the audio the track was cut into, from bytes it checked against the chain.
    let mut heard = Vec::new();
    for chunk in &whole.keys {
        let stored = node.chunk(root, chunk.index).await?;
        manifest.verify_chunk(chunk.index, &stored)?;
        let opened = decrypt_chunk(&key_of(chunk)?, chunk.index, &stored)?;
        assert_eq!(opened, plain[chunk.index as usize].bytes, "chunk {}", chunk.index);
        let pcm = decode_chunk(&opened)?;
        assert_eq!((pcm.sample_rate, pcm.channels), (manifest.sample_rate, manifest.channels));
        heard.extend(pcm.samples);
    }
    let want: Vec<i16> = plain
        .iter()
        .flat_map(|c| decode_chunk(&c.bytes).expect("a chunk decodes").samples)
        .collect();
    assert_eq!(heard, want, "the decoded track");
    let frames = heard.len() / usize::from(manifest.channels);
    assert_eq!(
        frames as u64,
        TRACK_MS * u64::from(manifest.sample_rate) / 1000,
        "every frame of the file, none added"
    );

    stop.cancel();
    indexer.await??;
    api.await??;
    relay.await??;
    Ok(())
}

/// What one play gave the player.
struct Played {
    keys: Vec<ChunkKeyFrame>,
    total: U256,
}

/// A listener's player: a session key under a grant.
struct Player {
    key: PrivateKeySigner,
    grant: SessionGrant,
    domain: beatstream_primitives::VoucherDomain,
}

impl Player {
    /// Plays track 1, paying each beat at once; stops after `seconds` paid seconds (acked), or plays to the end of
    /// the track. Checks at every ack that its keys are of seconds already paid, and returns them all.
    async fn play(&self, ws: &mut Ws, seconds: Option<u64>) -> eyre::Result<Played> {
        ws.send(text(ClientFrame::Play { track_id: Uint("1".into()), from: None, beats: None }))
            .await?;
        let (session_id, payee) = match recv(ws).await? {
            ServerFrame::Session { session_id, payee, .. } => (session_id, payee.parse()?),
            other => eyre::bail!("expected session, got {other:?}"),
        };
        let rate = U256::from(RATE);
        // The grant's cumulative to this payee when the session started: the first beat owes one second more.
        let mut start: Option<U256> = None;
        let (mut keys, mut last_paid, mut stopping) =
            (Vec::<ChunkKeyFrame>::new(), U256::ZERO, false);
        loop {
            match recv(ws).await? {
                ServerFrame::Beat { session_id: id, owed, .. } if id == session_id => {
                    let owed: U256 = owed.parse()?;
                    let start = *start.get_or_insert(owed - rate);
                    let within = seconds.is_none_or(|s| owed <= start + U256::from(s) * rate);
                    if within && !stopping {
                        let sig =
                            self.domain.sign_voucher(&self.key, self.grant.id(), payee, owed)?;
                        ws.send(text(ClientFrame::voucher(self.grant.id(), payee, owed, &sig)))
                            .await?;
                    }
                }
                ServerFrame::Ack { session_id: id, cumulative, keys: got } if id == session_id => {
                    let cumulative: U256 = cumulative.parse()?;
                    let start = start.ok_or_else(|| eyre::eyre!("an ack before any beat"))?;
                    let paid_seconds = ((cumulative - start) / rate).to::<u32>();
                    for k in &got {
                        assert!(
                            k.index < paid_seconds,
                            "the key of chunk {} came with {paid_seconds} seconds paid",
                            k.index
                        );
                    }
                    keys.extend(got);
                    last_paid = cumulative;
                    if seconds.is_some_and(|s| u64::from(paid_seconds) == s) && !stopping {
                        stopping = true;
                        ws.send(text(ClientFrame::Stop { session_id: session_id.clone() })).await?;
                    }
                }
                ServerFrame::Closed { session_id: id, total } if id == session_id => {
                    let start = start.ok_or_else(|| eyre::eyre!("closed before any beat"))?;
                    let total: U256 = total.parse()?;
                    assert_eq!(total, last_paid - start, "the session's total is what was acked");
                    return Ok(Played { keys, total });
                }
                other => eyre::bail!("unexpected {other:?}"),
            }
        }
    }
}

/// The node's HTTP side: the studio and the audio it serves, and GraphQL.
struct Node {
    addr: SocketAddr,
    http: reqwest::Client,
}

impl Node {
    /// The node's address as a URL.
    fn base(&self) -> reqwest::Url {
        format!("http://{}", self.addr).parse().expect("a URL")
    }

    /// The track's manifest, as served.
    async fn manifest(&self, root: B256) -> eyre::Result<Manifest> {
        Ok(Manifest::from_json(&self.get(&format!("/audio/{root}/manifest.json")).await?)?)
    }

    /// Chunk `index` of the track `root`, as served (ciphertext ‖ tag).
    async fn chunk(&self, root: B256, index: u32) -> eyre::Result<Vec<u8>> {
        self.get(&format!("/audio/{root}/{index}")).await
    }

    async fn get(&self, path: &str) -> eyre::Result<Vec<u8>> {
        let response = self.http.get(format!("http://{}{path}", self.addr)).send().await?;
        eyre::ensure!(response.status() == 200, "GET {path}: {}", response.status());
        Ok(response.bytes().await?.to_vec())
    }

    async fn post(&self, path: &str, body: Value) -> eyre::Result<Value> {
        let response =
            self.http.post(format!("http://{}{path}", self.addr)).json(&body).send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        eyre::ensure!(status.is_success(), "POST {path}: {status} {body}");
        Ok(body)
    }

    /// A GraphQL query's `data`, failing on errors.
    async fn graphql(&self, query: &str, variables: Value) -> eyre::Result<Value> {
        let answer =
            self.post("/graphql", json!({ "query": query, "variables": variables })).await?;
        eyre::ensure!(answer.get("errors").is_none(), "GraphQL errors: {answer}");
        Ok(answer["data"].clone())
    }
}

/// `wav` (16-bit PCM, a canonical 44-byte header) cut to its first `ms` milliseconds.
fn cut_to(wav: &[u8], ms: u64) -> Vec<u8> {
    let rate = u32::from_le_bytes(wav[24..28].try_into().expect("4 bytes")) as u64;
    let block = u16::from_le_bytes(wav[32..34].try_into().expect("2 bytes")) as u64;
    let data = (rate * ms / 1000 * block) as u32;
    let mut out = wav[..44].to_vec();
    out[4..8].copy_from_slice(&(36 + data).to_le_bytes());
    out[40..44].copy_from_slice(&data.to_le_bytes());
    out.extend_from_slice(&wav[44..44 + data as usize]);
    out
}

fn key_of(frame: &ChunkKeyFrame) -> eyre::Result<ChunkKey> {
    let bytes: [u8; 32] = alloy::hex::decode(&frame.key)?
        .try_into()
        .map_err(|_| eyre::eyre!("a chunk key of other than 32 bytes"))?;
    Ok(ChunkKey::from_bytes(bytes))
}

fn indexes(keys: &[ChunkKeyFrame]) -> Vec<u32> {
    keys.iter().map(|k| k.index).collect()
}

async fn count(db: &TestDb, table: &str) -> eyre::Result<i64> {
    Ok(sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(db.pool()).await?)
}

fn text(frame: ClientFrame) -> Message {
    Message::text(frame.to_json())
}

async fn recv(ws: &mut Ws) -> eyre::Result<ServerFrame> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await?
            .ok_or_else(|| eyre::eyre!("relay closed the connection"))??;
        if let Message::Text(t) = msg {
            return Ok(serde_json::from_str(t.as_str())?);
        }
    }
}
