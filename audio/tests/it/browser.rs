//! Data for the browser check (tests/browser/run.sh): stored chunks, their keys and the decoded tracks. Ignored by
//! default; the script runs it with `--ignored` and BEATSTREAM_BROWSER_DIR set.

use beatstream_audio::{Limits, TrackChunks, TrackSecret, chunk_key};

use crate::{decode_all, fixture};

#[test]
#[ignore = "writes files for tests/browser/run.sh"]
fn browser_data() {
    let out = std::path::PathBuf::from(
        std::env::var("BEATSTREAM_BROWSER_DIR").expect("BEATSTREAM_BROWSER_DIR"),
    );
    let mut tracks = Vec::new();
    for name in ["tone.wav", "tone.flac", "tone.mp3", "tone.opus"] {
        let secret = TrackSecret::generate();
        let path = fixture(name);
        let stem = name.replace('.', "_");
        let pcm: Vec<u8> = decode_all(&path).iter().flat_map(|s| s.to_le_bytes()).collect();
        std::fs::write(out.join(format!("{stem}.pcm")), pcm).unwrap();
        let mut track = TrackChunks::open(&path, &Limits::default(), &secret).unwrap();
        for chunk in track.by_ref() {
            let chunk = chunk.unwrap();
            std::fs::write(out.join(format!("{stem}_{}.bin", chunk.index)), &chunk.bytes).unwrap();
        }
        let manifest = track.manifest().unwrap();
        let keys: Vec<String> = (0..manifest.chunk_count)
            .map(|i| alloy::hex::encode(chunk_key(&secret, i).expose()))
            .collect();
        tracks.push(serde_json::json!({
            "stem": stem,
            "sampleRate": manifest.sample_rate,
            "channels": manifest.channels,
            "chunkCount": manifest.chunk_count,
            "keys": keys,
        }));
    }
    std::fs::write(out.join("tracks.json"), serde_json::to_vec_pretty(&tracks).unwrap()).unwrap();
}
