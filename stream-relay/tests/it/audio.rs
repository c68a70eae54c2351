//! Chunk keys released by payment: each `ack` carries the keys of exactly the chunks its voucher paid for, none
//! while paused (caught up after), none beyond the track; a track whose stored audio does not match the chain, or
//! whose secret this relay cannot open, is not played.

use alloy::primitives::{B256, U256};
use beatstream_audio::{
    Manifest, NodeKey, TrackSecret, chunk_key, chunks_hash, encrypt_chunk, leaf, root, seal_secret,
};
use beatstream_stream_relay::protocol::{ChunkKeyFrame, ServerFrame};
use beatstream_testkit::TestDb;
use sqlx::PgPool;

use crate::harness::*;

pub(crate) const NODE_KEY: [u8; 32] = [0x42; 32];

/// A track of `chunks` seconds by `artist` (the artist's rate), its audio uploaded as the studio stores it: stand-in
/// chunks encrypted under `secret`, the manifest, the root as the track's `contentHash`. `published_duration` is
/// what the chain says (equal to `chunks` for a consistent track).
pub(crate) async fn seed_audio_track(
    pool: &PgPool,
    id: u64,
    artist: &Artist,
    secret: &TrackSecret,
    chunks: u32,
    published_duration: i32,
) -> eyre::Result<Manifest> {
    let leaves: Vec<B256> = (0..chunks)
        .map(|i| leaf(&encrypt_chunk(&chunk_key(secret, i), i, format!("chunk {i}").as_bytes())))
        .collect();
    let duration_ms = u64::from(chunks) * 1000 - 250;
    let root = root(chunks, duration_ms, chunks_hash(&leaves));
    let manifest: Manifest = serde_json::from_value(serde_json::json!({
        "version": 1, "chunkSeconds": 1, "chunkCount": chunks, "durationMs": duration_ms,
        "sampleRate": 44100, "channels": 2, "mimeType": "audio/flac", "chunks": leaves, "root": root,
    }))?;
    manifest.verify()?;
    sqlx::query(
        "INSERT INTO tracks (chain_id, track_id, artist_node, title, duration, rate_per_second, content_hash,
                             metadata_uri, published, published_at, updated_block)
         VALUES ($1, $2::numeric, $3, 'with audio', $4, 0, $5, '', true, now(), 1)",
    )
    .bind(CHAIN_ID as i64)
    .bind(id.to_string())
    .bind(artist.node.as_slice())
    .bind(published_duration)
    .bind(root.as_slice())
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO audio_tracks (chain_id, root, artist_node, uploaded_by, chunk_count, duration_ms,
                                   sealed_secret, manifest)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
    )
    .bind(CHAIN_ID as i64)
    .bind(root.as_slice())
    .bind(artist.node.as_slice())
    .bind(artist.payee.as_slice())
    .bind(chunks as i32)
    .bind(duration_ms as i64)
    .bind(seal_secret(&NodeKey::from_bytes(NODE_KEY), secret))
    .bind(String::from_utf8(manifest.to_json())?)
    .execute(pool)
    .await?;
    Ok(manifest)
}

fn with_key(db: &TestDb) -> beatstream_stream_relay::Config {
    let mut c = config(db, no_rpc());
    c.audio_key.audio_key = Some(alloy::hex::encode(NODE_KEY));
    c
}

/// Sends the voucher for `cumulative` and returns the keys of its ack.
async fn pay_for_keys(
    c: &mut Client,
    player: &Player,
    artist: &Artist,
    cumulative: u64,
) -> eyre::Result<Vec<ChunkKeyFrame>> {
    c.send(&player.voucher(artist.payee, cumulative)).await?;
    loop {
        match c.recv().await? {
            ServerFrame::Ack { cumulative: got, keys, .. } if got == cumulative.to_string() => {
                return Ok(keys);
            }
            ServerFrame::Beat { .. } | ServerFrame::Ack { .. } | ServerFrame::Paused { .. } => {}
            other => eyre::bail!("expected the ack of {cumulative}, got {other:?}"),
        }
    }
}

fn indexes(keys: &[ChunkKeyFrame]) -> Vec<u32> {
    keys.iter().map(|k| k.index).collect()
}

#[tokio::test]
async fn each_ack_carries_the_keys_its_voucher_paid_for_and_no_more() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let secret = TrackSecret::from_bytes([0x17; 32]);
    seed_audio_track(db.pool(), 10, &scene.alice, &secret, 10, 10).await?;
    let player = Player::new(1_000_000);
    seed_listener(db.pool(), player.listener(), 700_000, 0).await?;
    let relay = Relay::start(with_key(&db)).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&player).await?;

    // Second 1 is released; its voucher pays chunk 0 and the ack carries exactly K_0.
    let (session, owed) = c.play(10).await?;
    assert_eq!(owed, U256::from(100));
    let keys = pay_for_keys(&mut c, &player, &scene.alice, 100).await?;
    assert_eq!(indexes(&keys), [0]);
    assert_eq!(keys[0].key, alloy::hex::encode_prefixed(chunk_key(&secret, 0).expose()));

    // Second 2: chunk 1 only.
    assert_eq!(c.beat_of(&session).await?, (2, U256::from(200)));
    let keys = pay_for_keys(&mut c, &player, &scene.alice, 200).await?;
    assert_eq!(indexes(&keys), [1]);
    assert_eq!(keys[0].key, alloy::hex::encode_prefixed(chunk_key(&secret, 1).expose()));

    // The listener falls behind until the session pauses. The ack that pays the backlog carries no key (the
    // session is still paused when it is sent); once beats resume, the next ack catches up with every chunk paid.
    let mut last_owed = 200u64;
    loop {
        match c.recv().await? {
            ServerFrame::Beat { session_id, owed, .. } if session_id == session => {
                last_owed = owed.parse()?;
            }
            ServerFrame::Paused { reason, .. } => {
                assert_eq!(reason, "vouchers_behind");
                break;
            }
            ServerFrame::Ack { .. } => {}
            other => eyre::bail!("expected beats then paused, got {other:?}"),
        }
    }
    let seconds = (last_owed / 100) as u32;
    assert!((3..10).contains(&seconds), "paused after {seconds} s");
    let keys = pay_for_keys(&mut c, &player, &scene.alice, last_owed).await?;
    assert!(keys.is_empty(), "an ack while paused carried keys: {keys:?}");
    let (_, owed) = c.beat_of(&session).await?;
    assert_eq!(owed, U256::from(last_owed + 100), "beats resume where they stopped");
    let keys = pay_for_keys(&mut c, &player, &scene.alice, last_owed + 100).await?;
    assert_eq!(indexes(&keys), (2..=seconds).collect::<Vec<_>>());

    // To the end of the track: one key per paid second, each once, in order, none past the last chunk.
    let mut released: Vec<u32> = (0..=seconds).collect();
    let mut owed = last_owed + 100;
    while owed < 1_000 {
        let (_, next) = c.beat_of(&session).await?;
        owed = next.to::<u64>();
        released.extend(indexes(&pay_for_keys(&mut c, &player, &scene.alice, owed).await?));
    }
    assert_eq!(released, (0..10).collect::<Vec<_>>());
    let closed = c.recv_until(|f| matches!(f, ServerFrame::Closed { .. })).await?;
    assert!(
        matches!(closed, ServerFrame::Closed { ref total, .. } if total == "1000"),
        "{closed:?}"
    );
    relay.stop().await
}

#[tokio::test]
async fn a_play_from_a_second_pays_and_releases_only_the_rest_of_the_track() -> eyre::Result<()> {
    use beatstream_stream_relay::protocol::{ClientFrame, Uint};

    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let secret = TrackSecret::from_bytes([0x1a; 32]);
    seed_audio_track(db.pool(), 10, &scene.alice, &secret, 6, 6).await?;
    let player = Player::new(1_000_000);
    seed_listener(db.pool(), player.listener(), 700_000, 0).await?;
    let relay = Relay::start(with_key(&db)).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&player).await?;
    let play = |from: u32| ClientFrame::Play {
        track_id: Uint("10".into()),
        from: Some(from),
        beats: None,
    };

    // `from` past the track's last second is refused, and nothing starts.
    c.send(&play(6)).await?;
    match c.recv_no_beat().await? {
        ServerFrame::Error { code, .. } => assert_eq!(code, "invalid_field"),
        other => eyre::bail!("expected invalid_field, got {other:?}"),
    }

    // From second 4 of 6: two seconds to pay, chunks 4 and 5, then the end.
    c.send(&play(4)).await?;
    let session = match c.recv_no_beat().await? {
        ServerFrame::Session { session_id, .. } => session_id,
        other => eyre::bail!("expected session, got {other:?}"),
    };
    assert_eq!(c.beat_of(&session).await?, (1, U256::from(100)));
    let keys = pay_for_keys(&mut c, &player, &scene.alice, 100).await?;
    assert_eq!(indexes(&keys), [4]);
    assert_eq!(keys[0].key, alloy::hex::encode_prefixed(chunk_key(&secret, 4).expose()));
    assert_eq!(c.beat_of(&session).await?, (2, U256::from(200)));
    assert_eq!(indexes(&pay_for_keys(&mut c, &player, &scene.alice, 200).await?), [5]);
    let closed = c.recv_until(|f| matches!(f, ServerFrame::Closed { .. })).await?;
    assert!(
        matches!(closed, ServerFrame::Closed { ref total, .. } if total == "200"),
        "{closed:?}"
    );
    relay.stop().await
}

#[tokio::test]
async fn a_track_whose_audio_does_not_match_the_chain_is_not_played() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let secret = TrackSecret::from_bytes([0x18; 32]);
    // Published as 5 seconds, 4 chunks stored.
    seed_audio_track(db.pool(), 11, &scene.alice, &secret, 4, 5).await?;
    // Stored chunks swapped after publication: the manifest no longer recomputes to the root.
    let manifest = seed_audio_track(db.pool(), 12, &scene.alice, &secret, 3, 3).await?;
    let mut swapped = manifest.clone();
    swapped.chunks.swap(0, 1);
    sqlx::query("UPDATE audio_tracks SET manifest = $2::jsonb WHERE root = $1")
        .bind(manifest.root.as_slice())
        .bind(String::from_utf8(swapped.to_json())?)
        .execute(db.pool())
        .await?;
    seed_audio_track(db.pool(), 13, &scene.alice, &TrackSecret::from_bytes([0x19; 32]), 3, 3)
        .await?;
    let player = Player::new(1_000_000);
    seed_listener(db.pool(), player.listener(), 700_000, 0).await?;

    let relay = Relay::start(with_key(&db)).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&player).await?;
    for track in [11, 12] {
        c.send(&beatstream_stream_relay::protocol::ClientFrame::Play {
            track_id: beatstream_stream_relay::protocol::Uint(track.to_string()),
            from: None,
            beats: None,
        })
        .await?;
        let message = c.expect_error("audio_mismatch").await?;
        assert!(message.contains("does not match the chain"), "{message}");
    }
    // A consistent track plays on the same connection: nothing was started by the refusals.
    let (_, owed) = c.play(13).await?;
    assert_eq!(owed, U256::from(100));
    let sessions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sessions").fetch_one(db.pool()).await?;
    assert_eq!(sessions, 1);
    relay.stop().await?;

    // A relay without the node's audio key cannot release keys, so it does not play the track at all.
    let relay = Relay::start(config(&db, no_rpc())).await?;
    let mut c = Client::connect(&relay).await?;
    c.hello(&player).await?;
    c.send(&beatstream_stream_relay::protocol::ClientFrame::Play {
        track_id: beatstream_stream_relay::protocol::Uint("13".into()),
        from: None,
        beats: None,
    })
    .await?;
    c.expect_error("audio_unavailable").await?;
    // A track with no uploaded audio still plays, without keys.
    let (session, _) = c.play(1).await?;
    c.send(&player.voucher(scene.alice.payee, 100)).await?;
    let ack = c.recv_until(|f| matches!(f, ServerFrame::Ack { .. })).await?;
    assert!(
        matches!(ack, ServerFrame::Ack { ref session_id, ref keys, .. } if *session_id == session && keys.is_empty())
    );
    relay.stop().await
}
