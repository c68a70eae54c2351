use beatstream_audio::{Limits, probe, wav};

use crate::{FIXTURES, decode_all, fixture};

#[test]
fn probe_reports_what_each_file_truly_holds() {
    for f in &FIXTURES {
        let info = probe(&fixture(f.name), &Limits::default()).unwrap();
        assert_eq!(info.format.codec, f.codec, "{}", f.name);
        assert_eq!(info.format.sample_rate, f.sample_rate, "{}", f.name);
        assert_eq!(info.format.channels, f.channels, "{}", f.name);
        assert_eq!(info.frames, f.frames, "{}", f.name);
        let duration_ms = (f.frames * 1000).div_ceil(u64::from(f.sample_rate));
        assert_eq!(info.duration_ms(), duration_ms, "{}", f.name);
        assert_eq!(
            u64::from(info.chunk_count()),
            f.frames.div_ceil(u64::from(f.sample_rate)),
            "{}",
            f.name
        );
    }
}

#[test]
fn fixture_lengths_in_time() {
    let ms: Vec<u64> = FIXTURES
        .iter()
        .map(|f| probe(&fixture(f.name), &Limits::default()).unwrap().duration_ms())
        .collect();
    assert_eq!(ms, [1500, 1500, 2300, 2700]);
}

#[test]
fn the_name_does_not_decide_the_format() {
    let bytes = std::fs::read(fixture("tone.flac")).unwrap();
    let (_dir, path) = crate::temp_file("song.mp3", &bytes);
    assert_eq!(
        probe(&path, &Limits::default()).unwrap().format.codec,
        beatstream_audio::Codec::Flac
    );
}

#[test]
fn lossless_sources_decode_to_their_exact_samples() {
    // The WAV is parsed here without Symphonia; the FLAC was made from it by `flac`.
    let source = wav::decode(&std::fs::read(fixture("tone.wav")).unwrap()).unwrap();
    assert_eq!(decode_all(&fixture("tone.wav")), source.samples);
    assert_eq!(decode_all(&fixture("tone.flac")), source.samples);
}

#[test]
fn lossy_sources_sound_like_their_source() {
    // Not bit-exact (lossy), but the right tune at the right level: each channel's energy is close to the
    // source's sine at -6 dBFS (RMS about 0.354 of full scale before the fades).
    for name in ["tone.mp3", "tone.opus"] {
        let pcm = decode_all(&fixture(name));
        for channel in 0..2 {
            let samples: Vec<f64> =
                pcm.iter().skip(channel).step_by(2).map(|&s| f64::from(s) / 32_768.0).collect();
            let rms = (samples.iter().map(|s| s * s).sum::<f64>() / samples.len() as f64).sqrt();
            assert!((0.30..0.40).contains(&rms), "{name} channel {channel}: rms {rms}");
        }
    }
}
