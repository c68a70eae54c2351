use beatstream_audio::{Chunker, Limits, PcmReader, probe};

use crate::{fixture, temp_file};

fn code_of(name: &str, bytes: &[u8], limits: &Limits) -> &'static str {
    let (_dir, path) = temp_file(name, bytes);
    probe(&path, limits).expect_err("the file must be refused").code()
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

#[test]
fn truncated_files_are_corrupt() {
    for name in ["tone.wav", "tone.flac", "tone.mp3", "tone.opus"] {
        let bytes = fixture_bytes(name);
        for cut in [60, bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(
                code_of(name, &bytes[..cut], &Limits::default()),
                "audio_corrupt",
                "{name} cut at {cut}"
            );
        }
    }
}

#[test]
fn damaged_checksummed_files_are_corrupt() {
    // FLAC frames carry CRCs and the stream an MD5; Ogg pages carry CRCs. MP3 and WAV carry no checksum over
    // their audio, so a flipped byte in them is sound, not an error.
    for name in ["tone.flac", "tone.opus"] {
        let bytes = fixture_bytes(name);
        for at in [bytes.len() / 3, bytes.len() / 2] {
            let mut damaged = bytes.clone();
            damaged[at..at + 16].iter_mut().for_each(|b| *b ^= 0x5a);
            assert_eq!(
                code_of(name, &damaged, &Limits::default()),
                "audio_corrupt",
                "{name} damaged at {at}"
            );
        }
    }
}

#[test]
fn an_empty_file_is_empty() {
    assert_eq!(code_of("empty.mp3", b"", &Limits::default()), "audio_empty");
}

#[test]
fn a_wav_without_frames_is_empty() {
    let header = beatstream_audio::wav::encode(44_100, 2, &[]);
    assert_eq!(code_of("silence.wav", &header, &Limits::default()), "audio_empty");
}

#[test]
fn text_named_mp3_is_unsupported() {
    let text = "This is not a song, only a text file with an .mp3 name.\n".repeat(50);
    assert_eq!(code_of("song.mp3", text.as_bytes(), &Limits::default()), "audio_unsupported");
}

#[test]
fn more_than_two_channels_is_unsupported() {
    let mut bytes = beatstream_audio::wav::encode(8_000, 1, &[0; 300]);
    // Three channels, block align 6, byte rate 48 000: a valid WAV this crate does not take.
    bytes[22..24].copy_from_slice(&3u16.to_le_bytes());
    bytes[28..32].copy_from_slice(&48_000u32.to_le_bytes());
    bytes[32..34].copy_from_slice(&6u16.to_le_bytes());
    assert_eq!(code_of("surround.wav", &bytes, &Limits::default()), "audio_unsupported");
}

#[test]
fn longer_than_the_limit_is_too_long() {
    let bytes = fixture_bytes("tone.mp3"); // 2300 ms
    let limits = |max_duration_ms| Limits { max_duration_ms, ..Limits::default() };
    assert_eq!(code_of("tone.mp3", &bytes, &limits(2299)), "audio_too_long");
    let (_dir, path) = temp_file("tone.mp3", &bytes);
    assert_eq!(probe(&path, &limits(2300)).unwrap().duration_ms(), 2300);

    // The chunker refuses as it goes, and stops.
    let results: Vec<_> = Chunker::open(&path, &limits(1500)).unwrap().collect();
    assert_eq!(results.len(), 2, "one chunk, then the error");
    assert_eq!(results[1].as_ref().unwrap_err().code(), "audio_too_long");
}

#[test]
fn larger_than_the_byte_limit_is_too_large() {
    let bytes = fixture_bytes("tone.opus");
    let limits = Limits { max_bytes: bytes.len() as u64 - 1, ..Limits::default() };
    assert_eq!(code_of("tone.opus", &bytes, &limits), "audio_too_large");
    let exact = Limits { max_bytes: bytes.len() as u64, ..Limits::default() };
    let (_dir, path) = temp_file("tone.opus", &bytes);
    assert!(probe(&path, &exact).is_ok());
}

#[test]
fn an_upload_streamed_through_the_byte_counter() {
    let bytes = fixture_bytes("tone.mp3");
    let mut reader = beatstream_audio::LimitedReader::new(bytes.as_slice(), 1000);
    let err = std::io::copy(&mut reader, &mut std::io::sink()).unwrap_err();
    assert_eq!(beatstream_audio::Error::from(err).code(), "audio_too_large");
}

#[test]
fn a_missing_file_is_an_io_error() {
    let err = PcmReader::open(&fixture("no-such-file.wav"), &Limits::default()).err().unwrap();
    assert_eq!(err.code(), "audio_io");
}
