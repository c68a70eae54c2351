//! Uploads over HTTP, on anvil and Postgres with a directory store: every fixture is stored, served, verified
//! against its manifest and root, and decrypts (with the secret sealed in its row) and decodes to exactly what the
//! audio crate cuts from the same file; ranges, ETags and CORS; and every refusal leaves nothing behind.

use std::path::{Path, PathBuf};

use alloy::primitives::{B256, keccak256};
use beatstream_audio::{
    Chunker, Limits, Manifest, chunk_key, decode_chunk, decrypt_chunk, open_secret,
};
use beatstream_studio::IMMUTABLE;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::{Env, assert_error, files, node_key};

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../audio/tests/fixtures").join(name)
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("a fixture")
}

/// An artist registered as `label`, signed in: its token.
pub(crate) async fn artist(env: &Env, index: u32, label: &str) -> eyre::Result<String> {
    let key = env.chain.anvil.signer(index as usize);
    env.chain.register(&key, label, 10).await?;
    env.sign_in(&key).await
}

/// Fetches the manifest and every chunk of the track `root` over HTTP (by index and by hash), checks them against
/// the manifest and `root`, opens the track's sealed secret from its row, decrypts and decodes each chunk, and
/// compares with what the audio crate cuts from `source`: the same bytes, the same samples.
pub(crate) async fn check_track(env: &Env, root: B256, source: &Path) -> eyre::Result<Manifest> {
    let fetched = env.fetch(&format!("/audio/{root}/manifest.json"), &[]).await?;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.header("content-type"), "application/json");
    assert_eq!(fetched.header("cache-control"), IMMUTABLE);
    assert_eq!(fetched.header("etag"), format!("\"{root}\""));
    let manifest = Manifest::from_json(&fetched.body)?;
    assert_eq!(manifest.root, root, "the manifest commits to the root the upload answered");

    let rows = env.tracks().await?;
    let sealed = &rows.iter().find(|(r, _)| *r == root).expect("a row for the track").1;
    let secret = open_secret(&node_key(), sealed)?;
    let cut: Vec<_> = Chunker::open(source, &Limits::default())?.collect::<Result<_, _>>()?;
    assert_eq!(cut.len(), manifest.chunk_count as usize);
    for (i, (hash, plain)) in manifest.chunks.iter().zip(&cut).enumerate() {
        let index = i as u32;
        let by_index = env.fetch(&format!("/audio/{root}/{index}"), &[]).await?;
        assert_eq!(by_index.status, StatusCode::OK, "chunk {index}");
        assert_eq!(by_index.header("content-type"), "application/octet-stream");
        assert_eq!(by_index.header("cache-control"), IMMUTABLE);
        assert_eq!(by_index.header("etag"), format!("\"{hash}\""));
        assert_eq!(by_index.header("accept-ranges"), "bytes");
        assert_eq!(by_index.header("content-length"), by_index.body.len().to_string());
        manifest.verify_chunk(index, &by_index.body)?;
        assert_eq!(keccak256(&by_index.body), *hash);
        let by_hash = env.fetch(&format!("/audio/chunks/{hash}"), &[]).await?;
        assert_eq!((by_hash.status, &by_hash.body), (StatusCode::OK, &by_index.body));

        let decrypted = decrypt_chunk(&chunk_key(&secret, index), index, &by_index.body)?;
        assert_eq!(decrypted, plain.bytes, "chunk {index}: the bytes the audio crate cuts");
        let (got, want) = (decode_chunk(&decrypted)?, decode_chunk(&plain.bytes)?);
        assert_eq!(got.samples, want.samples, "chunk {index}: the samples");
        assert_eq!((got.sample_rate, got.channels), (manifest.sample_rate, manifest.channels));
    }
    Ok(manifest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_is_stored_served_verified_and_decrypts_to_its_chunks() -> eyre::Result<()> {
    let env = Env::new().await?;
    let token = artist(&env, 2, "aurora").await?;
    let node = env.node("aurora");
    let mut roots = Vec::new();
    for name in ["tone.wav", "tone.mp3", "tone.flac", "tone.opus"] {
        let (status, body) = env.upload(Some(&token), "aurora", fixture_bytes(name)).await?;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        let root: B256 = body["root"].as_str().expect("a root").parse()?;
        let manifest = check_track(&env, root, &fixture(name)).await?;
        let expected = serde_json::json!({
            "root": root.to_string(),
            "chunkCount": manifest.chunk_count,
            "durationMs": manifest.duration_ms,
            "duration": manifest.chunk_count,
            "sampleRate": manifest.sample_rate,
            "channels": manifest.channels,
            "mimeType": "audio/flac",
            "manifestUrl": format!("/audio/{root}/manifest.json"),
        });
        assert_eq!(body, expected, "{name}");
        assert_eq!(body["duration"].as_u64(), manifest.duration_ms.div_ceil(1000).into());

        // The layout: content-addressed chunks, the manifest under its root, byte for byte as served.
        let store = env.store();
        let stored = std::fs::read(store.join(format!("tracks/{root}/manifest.json")))?;
        assert_eq!(stored, manifest.to_json());
        for hash in &manifest.chunks {
            assert_eq!(keccak256(std::fs::read(store.join(format!("chunks/{hash}")))?), *hash);
        }
        roots.push((root, manifest));
    }
    // The rows: one per upload, under the artist's node and the uploader's address.
    type Row = (Vec<u8>, Vec<u8>, Vec<u8>, i32, i64, Value);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT root, artist_node, uploaded_by, chunk_count, duration_ms, manifest FROM audio_tracks
         ORDER BY created_at",
    )
    .fetch_all(env.db.pool())
    .await?;
    assert_eq!(rows.len(), 4);
    for ((root, artist_node, uploaded_by, chunks, duration_ms, manifest), (r, m)) in
        rows.iter().zip(&roots)
    {
        assert_eq!((root.as_slice(), artist_node.as_slice()), (r.as_slice(), node.as_slice()));
        assert_eq!(uploaded_by.as_slice(), env.chain.anvil.signer(2).address().as_slice());
        assert_eq!((*chunks as u32, *duration_ms as u64), (m.chunk_count, m.duration_ms));
        assert_eq!(serde_json::from_value::<Manifest>(manifest.clone())?, *m);
    }
    assert!(env.uploads_left().is_empty(), "temporary files left: {:?}", env.uploads_left());

    // Far over the 64 KiB the JSON routes read: 4 s of 48 kHz stereo WAV, almost 768 KB.
    let samples: Vec<i16> =
        (0..4 * 48_000 * 2).map(|i| ((i * 37) % 20_000 - 10_000) as i16).collect();
    let wav = beatstream_audio::wav::encode(48_000, 2, &samples);
    let dir = tempfile::tempdir()?;
    let source = dir.path().join("long.wav");
    std::fs::write(&source, &wav)?;
    let (status, body) = env.upload(Some(&token), "aurora", wav).await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!((body["chunkCount"].as_u64(), body["durationMs"].as_u64()), (Some(4), Some(4000)));
    check_track(&env, body["root"].as_str().unwrap().parse()?, &source).await?;

    // The same file again: a new secret, so new ciphertext and a new root.
    let (status, again) = env.upload(Some(&token), "aurora", fixture_bytes("tone.wav")).await?;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_ne!(again["root"].as_str(), Some(roots[0].0.to_string().as_str()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_etags_cors_and_unknown_names() -> eyre::Result<()> {
    let env = Env::new().await?;
    let token = artist(&env, 2, "aurora").await?;
    let (status, body) = env.upload(Some(&token), "aurora", fixture_bytes("tone.mp3")).await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let root = body["root"].as_str().unwrap().to_owned();
    let whole = env.fetch(&format!("/audio/{root}/1"), &[]).await?;
    let etag = whole.header("etag").to_owned();
    let size = whole.body.len();
    let path = format!("/audio/{root}/1");

    // One range, read from the store as such.
    for (range, bytes) in [
        ("bytes=10-19", 10..20),
        ("bytes=100-", 100..size),
        ("bytes=-16", size - 16..size),
        (&format!("bytes=0-{}", size * 2), 0..size),
    ] {
        let part = env.fetch(&path, &[("range", range)]).await?;
        assert_eq!(part.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(part.body, whole.body[bytes.clone()], "{range}");
        assert_eq!(
            part.header("content-range"),
            format!("bytes {}-{}/{size}", bytes.start, bytes.end - 1),
            "{range}"
        );
        assert_eq!(part.header("content-length"), bytes.len().to_string());
        assert_eq!((part.header("etag"), part.header("cache-control")), (etag.as_str(), IMMUTABLE));
    }
    let hash = whole.header("etag").trim_matches('"').to_owned();
    let part = env.fetch(&format!("/audio/chunks/{hash}"), &[("range", "bytes=0-3")]).await?;
    assert_eq!((part.status, &part.body[..]), (StatusCode::PARTIAL_CONTENT, &whole.body[..4]));
    let unsatisfiable = env.fetch(&path, &[("range", &format!("bytes={size}-"))]).await?;
    assert_eq!(unsatisfiable.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(unsatisfiable.header("content-range"), format!("bytes */{size}"));
    assert_eq!(unsatisfiable.json()["error"]["code"], "range_not_satisfiable");
    // Several ranges, or an If-Range naming something else: the whole chunk.
    for headers in [
        vec![("range", "bytes=0-1,4-5")],
        vec![("range", "bytes=0-1"), ("if-range", "\"0xother\"")],
    ] {
        let got = env.fetch(&path, &headers).await?;
        assert_eq!((got.status, got.body.len()), (StatusCode::OK, size), "{headers:?}");
    }
    // The manifest is served in ranges too.
    let manifest = env.fetch(&format!("/audio/{root}/manifest.json"), &[]).await?;
    let part =
        env.fetch(&format!("/audio/{root}/manifest.json"), &[("range", "bytes=0-0")]).await?;
    assert_eq!((part.status, &part.body[..]), (StatusCode::PARTIAL_CONTENT, &manifest.body[..1]));

    // Revalidation: 304 with the same caching headers, no body.
    let cached = env.fetch(&path, &[("if-none-match", &etag)]).await?;
    assert_eq!((cached.status, cached.body.len()), (StatusCode::NOT_MODIFIED, 0));
    assert_eq!((cached.header("etag"), cached.header("cache-control")), (etag.as_str(), IMMUTABLE));
    let cached = env
        .fetch(
            &format!("/audio/{root}/manifest.json"),
            &[("if-none-match", &format!("\"{root}\""))],
        )
        .await?;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);

    // CORS for any origin, with no Vary to split a CDN's cache; a preflight for a Range request passes.
    let from_page = env.fetch(&path, &[("origin", "https://player.example")]).await?;
    assert_eq!(from_page.header("access-control-allow-origin"), "*");
    assert!(from_page.header("access-control-expose-headers").contains("content-range"));
    assert_eq!(from_page.header("vary"), "");
    let preflight = env
        .request(
            Method::OPTIONS,
            &path,
            &[
                ("origin", "https://player.example"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "range"),
            ],
        )
        .await?;
    assert!(preflight.status.is_success(), "{}", preflight.status);
    assert_eq!(preflight.header("access-control-allow-origin"), "*");
    assert!(preflight.header("access-control-allow-headers").contains("range"));
    // HEAD answers the headers alone.
    let head = env.request(Method::HEAD, &path, &[]).await?;
    assert_eq!(
        (head.status, head.header("content-length")),
        (StatusCode::OK, size.to_string().as_str())
    );

    // Unknown names.
    let other = B256::repeat_byte(7);
    for (path, code) in [
        (format!("/audio/{other}/manifest.json"), "unknown_track"),
        (format!("/audio/{other}/0"), "unknown_track"),
        (
            format!("/audio/{}/manifest.json", root.to_uppercase().replace("0X", "0x")),
            "unknown_track",
        ),
        (format!("/audio/{root}/3"), "unknown_chunk"),
        (format!("/audio/{root}/01"), "unknown_chunk"),
        (format!("/audio/{root}/x"), "unknown_chunk"),
        (format!("/audio/chunks/{other}"), "unknown_chunk"),
        ("/audio/chunks/nothing".to_owned(), "unknown_chunk"),
    ] {
        let got = env.fetch(&path, &[]).await?;
        assert_error(&(got.status, got.json()), 404, code);
        assert_eq!(got.header("access-control-allow-origin"), "*", "{path}");
        assert_ne!(got.header("cache-control"), IMMUTABLE, "{path}: a refusal is not immutable");
    }
    Ok(())
}

/// The upload was refused with `code` and `status`, and left no row, no object and no temporary file.
#[track_caller]
fn assert_refused_and_gone(env: &Env, answer: &(StatusCode, Value), status: u16, code: &str) {
    assert_error(answer, status, code);
    let stored = files(&env.store());
    assert!(stored.is_empty(), "{code}: objects left: {stored:?}");
    assert!(
        env.uploads_left().is_empty(),
        "{code}: temporary files left: {:?}",
        env.uploads_left()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_uploads_leave_nothing_behind() -> eyre::Result<()> {
    // Small limits: a 20 000-byte file and two seconds of audio at most.
    let env = Env::with(|o| {
        o.max_upload_bytes = 20_000;
        o.max_duration_secs = 2;
    })
    .await?;
    let token = artist(&env, 2, "aurora").await?;
    let other = artist(&env, 3, "borealis").await?;
    let flac = fixture_bytes("tone.flac"); // 9 498 bytes, 1.5 s

    // Corrupt: cut short (after its first chunk was stored), or damaged where only the end's checksum notices.
    let mut damaged = flac.clone();
    let at = flac.len() / 2;
    damaged[at..at + 16].iter_mut().for_each(|b| *b ^= 0x5a);
    let text = "This is not a song, only a text file with an .mp3 name.\n".repeat(50);
    for (what, body, status, code) in [
        ("cut short", flac[..flac.len() * 3 / 4].to_vec(), 422, "audio_corrupt"),
        ("damaged", damaged, 422, "audio_corrupt"),
        ("empty", Vec::new(), 422, "audio_empty"),
        ("text as mp3", text.into_bytes(), 415, "audio_unsupported"),
        ("over the byte limit", fixture_bytes("tone.wav"), 413, "audio_too_large"), // 48 044 bytes
        ("over the duration limit", fixture_bytes("tone.mp3"), 422, "audio_too_long"), // 19 016 bytes, 2.3 s
    ] {
        let answer = env.upload(Some(&token), "aurora", body).await?;
        assert_refused_and_gone(&env, &answer, status, code);
        assert_eq!(env.count("audio_tracks").await?, 0, "{what}");
    }
    // Over the byte limit without a Content-Length: refused as it streams in.
    let chunks = fixture_bytes("tone.wav")
        .chunks(4096)
        .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
        .collect::<Vec<_>>();
    let response = reqwest::Client::new()
        .post(format!("http://{}/studio/artists/aurora/tracks", env.addr))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await?;
    let answer = (response.status(), response.json::<Value>().await?);
    assert_refused_and_gone(&env, &answer, 413, "audio_too_large");

    // Who may upload: a manager of the name, signed in.
    let answer = env.upload(None, "aurora", flac.clone()).await?;
    assert_refused_and_gone(&env, &answer, 401, "unauthorized");
    let answer = env.upload(Some("not-a-token"), "aurora", flac.clone()).await?;
    assert_refused_and_gone(&env, &answer, 401, "unauthorized");
    let answer = env.upload(Some(&other), "aurora", flac.clone()).await?;
    assert_refused_and_gone(&env, &answer, 403, "not_manager");
    let answer = env.upload(Some(&token), "nobody-here", flac.clone()).await?;
    assert_refused_and_gone(&env, &answer, 403, "not_manager");
    let answer = env.upload(Some(&token), "Aurora", flac.clone()).await?;
    assert_refused_and_gone(&env, &answer, 400, "invalid_label");
    assert_eq!(env.count("audio_tracks").await?, 0);

    // Within the limits, the same studio takes it.
    let (status, body) = env.upload(Some(&token), "aurora", flac).await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(env.count("audio_tracks").await?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_audio_key_uploads_are_refused_and_sign_in_works() -> eyre::Result<()> {
    let env = Env::with_env(|_| {}, Vec::new(), false).await?;
    let token = artist(&env, 2, "aurora").await?;
    let answer = env.upload(Some(&token), "aurora", fixture_bytes("tone.wav")).await?;
    assert_refused_and_gone(&env, &answer, 503, "audio_key_missing");
    // Authorisation comes first: a stranger learns nothing about the node's key.
    assert_error(&env.upload(None, "aurora", Vec::new()).await?, 401, "unauthorized");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_whose_row_cannot_be_written_leaves_no_manifest_and_no_chunks() -> eyre::Result<()>
{
    let env = Env::new().await?;
    let token = artist(&env, 2, "aurora").await?;
    // Every chunk and the manifest are stored, then the row is refused.
    sqlx::query("ALTER TABLE audio_tracks ADD CONSTRAINT refuse_all CHECK (false) NOT VALID")
        .execute(env.db.pool())
        .await?;
    let answer = env.upload(Some(&token), "aurora", fixture_bytes("tone.mp3")).await?;
    assert_refused_and_gone(&env, &answer, 500, "internal");
    assert_eq!(answer.1["error"]["message"], "internal error", "details stay in the log");
    Ok(())
}
