use beatstream_audio::{
    Chunker, Limits, Manifest, NodeKey, TrackChunks, TrackSecret, chunk_key, chunks_hash,
    decrypt_chunk, leaf, open_secret, root, seal_secret,
};

use crate::fixture;

#[test]
fn stored_chunks_decrypt_to_the_chunks_and_verify_against_the_manifest() {
    let secret = TrackSecret::generate();
    let path = fixture("tone.opus");
    let mut track = TrackChunks::open(&path, &Limits::default(), &secret).unwrap();
    let stored: Vec<_> = track.by_ref().map(|c| c.unwrap()).collect();
    let manifest = track.manifest().expect("complete").clone();
    let plain: Vec<_> =
        Chunker::open(&path, &Limits::default()).unwrap().map(|c| c.unwrap()).collect();

    assert_eq!(stored.len(), 3);
    assert_eq!(manifest.chunk_count, 3, "the on-chain duration in seconds");
    assert_eq!(manifest.duration_ms, 2700);
    assert_eq!((manifest.sample_rate, manifest.channels), (48_000, 2));
    manifest.verify().unwrap();
    assert_eq!(manifest.root, root(3, 2700, chunks_hash(&manifest.chunks)));
    for (s, p) in stored.iter().zip(&plain) {
        assert_eq!(s.hash, leaf(&s.bytes));
        assert_eq!(manifest.chunks[s.index as usize], s.hash);
        manifest.verify_chunk(s.index, &s.bytes).unwrap();
        let key = chunk_key(&secret, s.index);
        assert_eq!(decrypt_chunk(&key, s.index, &s.bytes).unwrap(), p.bytes);
    }

    // A key opens its own chunk only.
    assert!(decrypt_chunk(&chunk_key(&secret, 0), 0, &stored[1].bytes).is_err());
    assert!(decrypt_chunk(&chunk_key(&secret, 0), 1, &stored[1].bytes).is_err());
    // One flipped byte and the chunk neither decrypts nor verifies.
    let mut flipped = stored[2].bytes.clone();
    flipped[100] ^= 1;
    assert_eq!(
        decrypt_chunk(&chunk_key(&secret, 2), 2, &flipped).unwrap_err().code(),
        "audio_decrypt"
    );
    assert_eq!(manifest.verify_chunk(2, &flipped).unwrap_err().code(), "audio_manifest");
    // A node that serves chunk 0 as chunk 1 is caught before decryption.
    assert!(manifest.verify_chunk(1, &stored[0].bytes).is_err());
    // And a manifest that swaps two hashes no longer matches its root.
    let mut swapped = manifest.clone();
    swapped.chunks.swap(0, 1);
    assert!(swapped.verify().is_err());
    // The JSON a player fetches parses back to the same manifest.
    assert_eq!(Manifest::from_json(&manifest.to_json()).unwrap(), manifest);
}

#[test]
fn the_same_audio_under_another_secret_has_another_root() {
    let path = fixture("tone.flac");
    let root_of = |secret: &TrackSecret| {
        let mut track = TrackChunks::open(&path, &Limits::default(), secret).unwrap();
        track.by_ref().for_each(|c| drop(c.unwrap()));
        track.manifest().unwrap().root
    };
    let secret = TrackSecret::generate();
    assert_eq!(root_of(&secret), root_of(&secret), "chunking is deterministic");
    assert_ne!(root_of(&secret), root_of(&TrackSecret::generate()));
}

#[test]
fn a_refused_upload_gives_no_manifest() {
    let secret = TrackSecret::generate();
    let limits = Limits { max_duration_ms: 1000, ..Limits::default() };
    let mut track = TrackChunks::open(&fixture("tone.wav"), &limits, &secret).unwrap();
    assert!(track.by_ref().any(|c| c.is_err()));
    assert!(track.next().is_none());
    assert!(track.manifest().is_none());
}

#[test]
fn the_track_secret_is_stored_sealed() {
    let node = NodeKey::from_bytes([42; 32]);
    let secret = TrackSecret::generate();
    let sealed = seal_secret(&node, &secret);
    assert_eq!(open_secret(&node, &sealed).unwrap(), secret);
    assert_eq!(
        open_secret(&NodeKey::from_bytes([43; 32]), &sealed).unwrap_err().code(),
        "audio_decrypt"
    );
}
