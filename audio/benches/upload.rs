//! Upload and chunking throughput of the audio crate alone, in seconds of audio per second of wall time, per
//! source format: the cut alone ([`Chunker`]: decode, cut at one second, encode FLAC), the whole audio part of an
//! upload ([`TrackChunks`]: that plus each chunk's key, AES-GCM and keccak leaf, then the manifest), and that plus
//! writing each stored chunk to a file in a directory (`chunks/<hash>`, as the studio's directory store lays them
//! out, without its object_store layer). No HTTP, no Postgres. Prints numbers; asserts nothing.
//!
//! `cargo bench -p beatstream-audio --bench upload` (release profile). Figures in docs/BENCHMARKS.md, "Audio".

use std::{
    path::Path,
    time::{Duration, Instant},
};

use beatstream_audio::{Chunker, Limits, TrackChunks, TrackSecret, demo, encode_chunk};

/// Seconds of generated audio in the WAV and FLAC sources.
const SECONDS: u32 = 300;
const RUNS: usize = 3;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");

    let wav = dir.path().join("track.wav");
    std::fs::write(&wav, demo::track(1, SECONDS)).expect("write wav");
    // One FLAC stream of the whole generated track (the encoder the chunks use; a valid FLAC file).
    let flac = dir.path().join("track.flac");
    std::fs::write(&flac, encode_chunk(demo::SAMPLE_RATE, 2, &demo::pcm(1, SECONDS)))
        .expect("write flac");

    // (name, file, seconds of audio in it, times each run cuts it): the fixtures are 2–3 s, so they are cut many
    // times per run.
    let sources = [
        ("WAV 44.1 kHz stereo (demo, 300 s)", wav, f64::from(SECONDS), 1),
        ("FLAC 44.1 kHz stereo (demo, 300 s)", flac, f64::from(SECONDS), 1),
        ("MP3 64 kb/s (fixture, 2.3 s)", fixtures.join("tone.mp3"), 2.3, 100),
        ("Opus 48 kb/s (fixture, 2.7 s)", fixtures.join("tone.opus"), 2.7, 100),
    ];

    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("chunks")).expect("store dir");
    let secret = TrackSecret::generate();
    let limits = Limits::default();

    println!("seconds of audio per second of wall time, one thread, best of {RUNS} runs\n");
    println!(
        "{:<38} {:>12} {:>16} {:>18}",
        "source", "cut (s/s)", "+ encrypt (s/s)", "+ write files (s/s)"
    );
    for (name, path, seconds, repeat) in &sources {
        let cut = best(|| {
            for _ in 0..*repeat {
                for chunk in Chunker::open(path, &limits).expect("open") {
                    std::hint::black_box(chunk.expect("chunk"));
                }
            }
        });
        let encrypted = best(|| {
            for _ in 0..*repeat {
                let mut chunks = TrackChunks::open(path, &limits, &secret).expect("open");
                for chunk in &mut chunks {
                    std::hint::black_box(chunk.expect("chunk"));
                }
                std::hint::black_box(chunks.manifest().expect("manifest"));
            }
        });
        let written = best(|| {
            for _ in 0..*repeat {
                let mut chunks = TrackChunks::open(path, &limits, &secret).expect("open");
                for chunk in &mut chunks {
                    let chunk = chunk.expect("chunk");
                    std::fs::write(
                        store.join("chunks").join(format!("{:x}", chunk.hash)),
                        &chunk.bytes,
                    )
                    .expect("write chunk");
                }
                let manifest = chunks.manifest().expect("manifest");
                std::fs::write(store.join("manifest.json"), manifest.to_json()).expect("manifest");
            }
        });
        let rate = |d: Duration| seconds * f64::from(*repeat) / d.as_secs_f64();
        println!(
            "{:<38} {:>12.0} {:>16.0} {:>18.0}",
            name,
            rate(cut),
            rate(encrypted),
            rate(written)
        );
    }
}

/// Runs `f` [`RUNS`] times; the shortest time.
fn best(mut f: impl FnMut()) -> Duration {
    let mut fastest = Duration::MAX;
    for _ in 0..RUNS {
        let start = Instant::now();
        f();
        fastest = fastest.min(start.elapsed());
    }
    fastest
}
