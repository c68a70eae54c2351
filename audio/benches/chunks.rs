//! Chunk formats compared on this machine: bytes per second of audio and encode time per second of audio for
//! 16-bit WAV and FLAC (`flacenc`, default settings, what the crate ships), the time to decode a FLAC chunk
//! again, and the whole upload path (read a WAV file, decode, cut, encode FLAC). Prints numbers; asserts nothing.
//!
//! `cargo bench -p beatstream-audio --bench chunks` (release profile). Figures in docs/DECISIONS.md.

use std::time::{Duration, Instant};

use beatstream_audio::{Chunker, Limits, decode_chunk, demo, encode_chunk, wav};

const SECONDS: u32 = 60;
const RUNS: usize = 3;

fn main() {
    let tones = demo::pcm(1, SECONDS);
    let signals = [
        ("tones (demo track)", tones.clone()),
        ("tones + noise at -40 dBFS", with_noise(&tones, 0.01)),
        ("tones + noise at -20 dBFS", with_noise(&tones, 0.1)),
    ];
    println!(
        "{SECONDS} s of 16-bit stereo at {} Hz per signal, best of {RUNS} runs\n",
        demo::SAMPLE_RATE
    );
    println!(
        "{:<28} {:>10} {:>13} {:>10} {:>14} {:>14} {:>14}",
        "signal",
        "WAV B/s",
        "WAV enc ms/s",
        "FLAC B/s",
        "FLAC enc ms/s",
        "FLAC dec ms/s",
        "upload ms/s"
    );
    for (name, pcm) in &signals {
        let seconds: Vec<&[i16]> = pcm.chunks(demo::SAMPLE_RATE as usize * 2).collect();

        let (wav_bytes, wav_time) =
            best(|| seconds.iter().map(|s| wav::encode(demo::SAMPLE_RATE, 2, s).len()).sum());
        let (flac_bytes, flac_time) =
            best(|| seconds.iter().map(|s| encode_chunk(demo::SAMPLE_RATE, 2, s).len()).sum());
        let flac_chunks: Vec<Vec<u8>> =
            seconds.iter().map(|s| encode_chunk(demo::SAMPLE_RATE, 2, s)).collect();
        let (_, flac_decode_time) = best(|| {
            flac_chunks.iter().map(|c| decode_chunk(c).expect("decode").samples.len()).sum()
        });

        // The whole path an upload takes: read a WAV file from disk, decode, cut at frame boundaries, encode FLAC.
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("source.wav");
        std::fs::write(&path, wav::encode(demo::SAMPLE_RATE, 2, pcm)).expect("write source");
        let (_, pipeline_time) = best(|| {
            Chunker::open(&path, &Limits::default())
                .expect("open")
                .map(|chunk| chunk.expect("chunk").bytes.len())
                .sum::<usize>()
        });

        let per_second = |x: usize| x as f64 / f64::from(SECONDS);
        let ms_per_second = |d: Duration| d.as_secs_f64() * 1000.0 / f64::from(SECONDS);
        println!(
            "{:<28} {:>10.0} {:>13.3} {:>10.0} {:>14.3} {:>14.3} {:>14.3}",
            name,
            per_second(wav_bytes),
            ms_per_second(wav_time),
            per_second(flac_bytes),
            ms_per_second(flac_time),
            ms_per_second(flac_decode_time),
            ms_per_second(pipeline_time),
        );
    }
}

/// Runs `f` [`RUNS`] times; its (last) result and the shortest time.
fn best(mut f: impl FnMut() -> usize) -> (usize, Duration) {
    let mut fastest = Duration::MAX;
    let mut result = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        result = std::hint::black_box(f());
        fastest = fastest.min(start.elapsed());
    }
    (result, fastest)
}

/// `pcm` plus white noise of amplitude `level` (of full scale): a stand-in for a real recording's noise floor
/// and dense mix, which compress worse than pure tones.
fn with_noise(pcm: &[i16], level: f64) -> Vec<i16> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    pcm.iter()
        .map(|&s| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            (f64::from(s) + noise * level * 32_767.0).round().clamp(-32_768.0, 32_767.0) as i16
        })
        .collect()
}
