//! docs/vectors/audio.json: fixed inputs and what this crate derives from them, for other implementations (the
//! browser player) to check against. `BEATSTREAM_UPDATE_VECTORS=1` rewrites the file; otherwise it must match.

use std::path::Path;

use alloy::{hex, primitives::keccak256, sol_types::SolValue};
use beatstream_audio::{
    AudioInfo, CHUNK_KEY_SALT, Codec, Format, Manifest, TrackSecret, chunk_key, chunks_hash,
    encrypt_chunk, leaf,
};
use serde_json::{Value, json};

fn vectors() -> Value {
    let secret = TrackSecret::from_bytes(std::array::from_fn(|i| i as u8));
    let chunk_keys: Vec<Value> = [0u32, 1, 2, 255, u32::MAX]
        .into_iter()
        .map(|i| {
            json!({
                "index": i,
                "info": hex::encode_prefixed(i.to_be_bytes()),
                "key": hex::encode_prefixed(chunk_key(&secret, i).expose()),
            })
        })
        .collect();

    let plaintext = b"BeatStream: one second of audio";
    let encryption = json!({
        "index": 1,
        "key": hex::encode_prefixed(chunk_key(&secret, 1).expose()),
        "nonce": hex::encode_prefixed([0u8; 12]),
        "aad": hex::encode_prefixed(1u32.to_be_bytes()),
        "plaintextUtf8": std::str::from_utf8(plaintext).unwrap(),
        "plaintext": hex::encode_prefixed(plaintext),
        "stored": hex::encode_prefixed(encrypt_chunk(&chunk_key(&secret, 1), 1, plaintext)),
    });

    // Three chunks whose plaintexts stand in for FLAC files (the root commits to bytes, whatever they hold):
    // 2.5 s at 44.1 kHz stereo.
    let stored: Vec<(String, Vec<u8>)> = (0..3u32)
        .map(|i| {
            let text = format!("chunk {i} plaintext");
            let bytes = encrypt_chunk(&chunk_key(&secret, i), i, text.as_bytes());
            (text, bytes)
        })
        .collect();
    let leaves: Vec<_> = stored.iter().map(|(_, bytes)| leaf(bytes)).collect();
    let info = AudioInfo {
        format: Format { codec: Codec::Flac, sample_rate: 44_100, channels: 2 },
        frames: 110_250,
    };
    let manifest = Manifest::new(&info, leaves.clone()).unwrap();
    let hash = chunks_hash(&leaves);
    let preimage = (3u32, 2500u64, hash).abi_encode_params();
    assert_eq!(keccak256(&preimage), manifest.root);

    json!({
        "description": "BeatStream audio test vectors (docs/PROTOCOL.md, Audio content). Hex is 0x-prefixed. \
            chunkKeys: HKDF-SHA256(ikm = secret, salt = UTF-8 of chunkKeySalt, info = index as 4 big-endian bytes), \
            32 bytes. encryption: AES-256-GCM(key, nonce = 12 zero bytes, aad = index as 4 big-endian bytes), \
            stored = ciphertext followed by the 16-byte tag. manifest: leaf = keccak256(stored chunk), chunksHash = \
            keccak256(leaves concatenated), root = keccak256(abi.encode(uint32 chunkCount, uint64 durationMs, \
            bytes32 chunksHash)) = keccak256(rootPreimage).",
        "secret": hex::encode_prefixed(secret.expose()),
        "chunkKeySalt": std::str::from_utf8(CHUNK_KEY_SALT).unwrap(),
        "chunkKeys": chunk_keys,
        "encryption": encryption,
        "manifestChunks": stored.iter().zip(&leaves).enumerate().map(|(i, ((text, bytes), leaf))| json!({
            "index": i,
            "plaintextUtf8": text,
            "stored": hex::encode_prefixed(bytes),
            "leaf": leaf,
        })).collect::<Vec<_>>(),
        "chunksHash": hash,
        "rootPreimage": hex::encode_prefixed(&preimage),
        "manifest": serde_json::to_value(&manifest).unwrap(),
    })
}

#[test]
fn docs_vectors_match_this_crate() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors/audio.json");
    let computed = vectors();
    if std::env::var_os("BEATSTREAM_UPDATE_VECTORS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(&computed).unwrap() + "\n").unwrap();
    }
    let written: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("docs/vectors/audio.json")).unwrap();
    assert_eq!(
        written, computed,
        "docs/vectors/audio.json is stale: BEATSTREAM_UPDATE_VECTORS=1 rewrites it"
    );
    // The manifest in the file verifies as a player would check it.
    Manifest::from_json(written["manifest"].to_string().as_bytes()).unwrap();
}
