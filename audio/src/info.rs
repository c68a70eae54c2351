//! What probing a file tells: its codec, sample rate, channels and true length.

/// Seconds of audio in one chunk.
pub const CHUNK_SECONDS: u32 = 1;

/// The codecs an upload may carry, each in its usual container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// MPEG-1/2 Layer III, in an MP3 file.
    Mp3,
    /// Opus, in an Ogg file (always decoded at 48 kHz).
    Opus,
    /// FLAC, in a native FLAC file (or an Ogg one).
    Flac,
    /// Uncompressed PCM (integer or float), in a WAV file.
    Pcm,
}

impl Codec {
    /// The codec's stable name: `mp3`, `opus`, `flac` or `pcm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mp3 => "mp3",
            Self::Opus => "opus",
            Self::Flac => "flac",
            Self::Pcm => "pcm",
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the decoded audio is laid out: what every chunk of the track carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// The source's codec.
    pub codec: Codec,
    /// Frames per second of the decoded audio (48 000 for Opus).
    pub sample_rate: u32,
    /// Channels, 1 or 2.
    pub channels: u16,
}

/// A probed track: its format and its true length, counted by decoding it to the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioInfo {
    /// Codec, sample rate and channels.
    pub format: Format,
    /// Decoded frames (samples per channel), after the encoder's delay and padding are removed.
    pub frames: u64,
}

impl AudioInfo {
    /// The duration in milliseconds, rounded up, so `duration_ms.div_ceil(1000) == chunk_count`.
    pub fn duration_ms(&self) -> u64 {
        duration_ms(self.frames, self.format.sample_rate)
    }

    /// The number of one-second chunks: `ceil(frames / sample_rate)`, the last one shorter.
    pub fn chunk_count(&self) -> u32 {
        let chunks =
            self.frames.div_ceil(u64::from(self.format.sample_rate) * u64::from(CHUNK_SECONDS));
        u32::try_from(chunks).expect("a track within any sane limit has fewer than 2^32 chunks")
    }
}

/// `frames` at `sample_rate` in milliseconds, rounded up.
pub(crate) fn duration_ms(frames: u64, sample_rate: u32) -> u64 {
    (u128::from(frames) * 1000).div_ceil(u128::from(sample_rate)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(frames: u64, sample_rate: u32) -> AudioInfo {
        AudioInfo { format: Format { codec: Codec::Pcm, sample_rate, channels: 2 }, frames }
    }

    #[test]
    fn duration_rounds_up_and_agrees_with_the_chunk_count() {
        assert_eq!(info(44_100, 44_100).duration_ms(), 1000);
        assert_eq!(info(44_100, 44_100).chunk_count(), 1);
        assert_eq!(info(44_101, 44_100).duration_ms(), 1001);
        assert_eq!(info(44_101, 44_100).chunk_count(), 2);
        assert_eq!(info(1, 48_000).duration_ms(), 1);
        for frames in [1, 47_999, 48_000, 48_001, 96_000, 129_600, 10_000_000] {
            let i = info(frames, 48_000);
            assert_eq!(i.duration_ms().div_ceil(1000), u64::from(i.chunk_count()), "{frames}");
        }
    }
}
