//! The relay's cost per released chunk key: what an `ack` that carries one key costs over an `ack` without, in CPU
//! (the key's HKDF-SHA256 derivation, its hex, the frame's JSON) and in bytes on the wire. Prints numbers; asserts
//! nothing.
//!
//! `cargo bench -p beatstream-stream-relay --bench chunk_keys` (release profile). Figures in docs/BENCHMARKS.md,
//! "Audio".
//!
//! The relay derives keys in `audio::TrackAudio::keys` (crate-private), which is `beatstream_audio::chunk_key` per
//! index; this program calls the same function and builds the same `ChunkKeyFrame` as `conn/outcomes.rs`.

use std::{hint::black_box, time::Instant};

use alloy::primitives::U256;
use beatstream_audio::{TrackSecret, chunk_key};
use beatstream_stream_relay::protocol::{ChunkKeyFrame, ServerFrame};
use uuid::Uuid;

const ITERATIONS: u32 = 1_000_000;
const RUNS: usize = 5;

fn main() {
    let secret = TrackSecret::generate();
    let session = Uuid::new_v4();
    // A cumulative of a realistic size: about an hour at 1e15 base units per second.
    let cumulative = U256::from(3_600_000_000_000_000_000u128);

    let derive = best(|i| {
        black_box(chunk_key(&secret, i));
    });
    let derive_hex = best(|i| {
        let key = chunk_key(&secret, i);
        black_box(alloy::hex::encode_prefixed(key.expose()));
    });
    let ack = best(|i| {
        let frame = ServerFrame::ack_with_keys(session, cumulative + U256::from(i), Vec::new());
        black_box(serde_json::to_string(&frame).expect("json"));
    });
    let ack_key = best(|i| {
        let key = chunk_key(&secret, i);
        let keys = vec![ChunkKeyFrame { index: i, key: alloy::hex::encode_prefixed(key.expose()) }];
        let frame = ServerFrame::ack_with_keys(session, cumulative + U256::from(i), keys);
        black_box(serde_json::to_string(&frame).expect("json"));
    });

    let bytes = |keys: Vec<ChunkKeyFrame>| {
        serde_json::to_string(&ServerFrame::ack_with_keys(session, cumulative, keys))
            .expect("json")
            .len()
    };
    let key_frame = |i: u32| ChunkKeyFrame {
        index: i,
        key: alloy::hex::encode_prefixed(chunk_key(&secret, i).expose()),
    };
    let without = bytes(Vec::new());
    let one = bytes(vec![key_frame(123)]);
    let five = bytes((120..125).map(key_frame).collect());

    println!("{ITERATIONS} iterations per row, best of {RUNS} runs, one thread\n");
    println!("{:<48} {:>10} {:>14}", "operation", "ns each", "per second");
    for (name, ns) in [
        ("chunk_key (HKDF-SHA256)", derive),
        ("chunk_key + hex", derive_hex),
        ("ack without keys: build + JSON", ack),
        ("ack with one key: derive + hex + build + JSON", ack_key),
    ] {
        println!("{name:<48} {ns:>10.0} {:>14.0}", 1e9 / ns);
    }
    println!("{:<48} {:>10.0}", "=> per released key (difference)", ack_key - ack);
    println!();
    println!(
        "ack JSON bytes: without keys {without}, one key {one} (+{}), five keys {five} (+{} per key)",
        one - without,
        (five - without) / 5
    );
}

/// Runs `f(i)` for `i` in `0..ITERATIONS`, [`RUNS`] times; the shortest run's nanoseconds per call.
fn best(mut f: impl FnMut(u32)) -> f64 {
    let mut fastest = f64::MAX;
    for _ in 0..RUNS {
        let start = Instant::now();
        for i in 0..ITERATIONS {
            f(i);
        }
        fastest = fastest.min(start.elapsed().as_nanos() as f64 / f64::from(ITERATIONS));
    }
    fastest
}
