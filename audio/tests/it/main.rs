//! The audio crate against real files: the committed fixtures (tests/fixtures/make.sh made them) and damaged
//! copies of them, the chunk pipeline end to end, and the test vectors in docs/vectors/audio.json.

mod browser;
mod chunks;
mod errors;
mod probe;
mod track;
mod vectors;

use std::path::{Path, PathBuf};

use beatstream_audio::{Codec, PcmReader};

/// A fixture: its file name and what it truly holds.
pub(crate) struct Fixture {
    pub(crate) name: &'static str,
    pub(crate) codec: Codec,
    pub(crate) sample_rate: u32,
    pub(crate) channels: u16,
    pub(crate) frames: u64,
}

/// Every fixture. The lengths are what make.sh asked for: lame's and opusenc's delay and padding removed.
pub(crate) const FIXTURES: [Fixture; 4] = [
    Fixture {
        name: "tone.wav",
        codec: Codec::Pcm,
        sample_rate: 8_000,
        channels: 2,
        frames: 12_000,
    },
    Fixture {
        name: "tone.flac",
        codec: Codec::Flac,
        sample_rate: 8_000,
        channels: 2,
        frames: 12_000,
    },
    Fixture {
        name: "tone.mp3",
        codec: Codec::Mp3,
        sample_rate: 44_100,
        channels: 2,
        frames: 101_430,
    },
    Fixture {
        name: "tone.opus",
        codec: Codec::Opus,
        sample_rate: 48_000,
        channels: 2,
        frames: 129_600,
    },
];

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Writes `bytes` to a file named `name` in a fresh temporary directory (kept alive by the returned guard).
pub(crate) fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// The whole decoded track, read the way the chunker reads it.
pub(crate) fn decode_all(path: &Path) -> Vec<i16> {
    let mut reader = PcmReader::open(path, &Default::default()).unwrap();
    let mut pcm = Vec::new();
    while let Some(block) = reader.next_block().unwrap() {
        pcm.extend_from_slice(block);
    }
    pcm
}
