//! A track cut into one-second chunks at exact frame boundaries, read from disk as it goes, each chunk a
//! standalone FLAC file of 16-bit PCM (docs/DECISIONS.md "Audio chunks" has the measurements behind FLAC).

use std::path::Path;

use flacenc::{component::BitRepr, error::Verify};

use crate::{AudioInfo, CHUNK_SECONDS, Codec, Error, Format, Limits, PcmReader, Result};

/// The MIME type of a chunk's plaintext.
pub const CHUNK_MIME_TYPE: &str = "audio/flac";

/// Bits per sample of every chunk, whatever the source's.
pub const CHUNK_BITS_PER_SAMPLE: u16 = 16;

/// One chunk of a track: `sample_rate × CHUNK_SECONDS` frames (the last chunk fewer), as a FLAC file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The chunk's position in the track, from 0.
    pub index: u32,
    /// Frames in the chunk.
    pub frames: u32,
    /// The chunk file (plaintext; [`encrypt_chunk`](crate::encrypt_chunk) makes what is stored).
    pub bytes: Vec<u8>,
}

/// Decoded 16-bit PCM, interleaved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pcm {
    /// Frames per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u16,
    /// Interleaved samples: `frames × channels` of them.
    pub samples: Vec<i16>,
}

impl Pcm {
    /// Frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }
}

/// Encodes interleaved 16-bit samples as a standalone FLAC file (STREAMINFO with the exact frame count and
/// the MD5 of the samples, then the frames; no other metadata).
pub fn encode_chunk(sample_rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
    let config = flacenc::config::Encoder::default()
        .into_verified()
        .expect("the default FLAC settings are valid");
    let wide: Vec<i32> = samples.iter().map(|&sample| i32::from(sample)).collect();
    let source = flacenc::source::MemSource::from_samples(
        &wide,
        usize::from(channels),
        usize::from(CHUNK_BITS_PER_SAMPLE),
        sample_rate as usize,
    );
    let stream = flacenc::encode_with_fixed_block_size(&config, source, config.block_size)
        .expect("FLAC encodes any 16-bit mono or stereo PCM");
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream.write(&mut sink).expect("writing to memory cannot fail");
    let mut bytes = sink.into_inner();
    // flacenc counts the short last block in STREAMINFO's minimum block size; the format excludes it, and a
    // minimum below the maximum marks a variable-block-size stream, which strict decoders (Symphonia) then
    // refuse because the frames carry fixed-size frame numbers. The frames are fixed-size: say so.
    let max_block_size = [bytes[10], bytes[11]];
    bytes[8..10].copy_from_slice(&max_block_size);
    bytes
}

/// Decodes a chunk's plaintext back to its PCM; [`Error::Corrupt`] for anything but a whole FLAC file.
pub fn decode_chunk(bytes: &[u8]) -> Result<Pcm> {
    let mut reader = PcmReader::from_bytes(bytes.to_vec(), &Limits::default())?;
    let format = reader.format();
    if format.codec != Codec::Flac {
        return Err(Error::Corrupt(format!("a chunk is FLAC, not {}", format.codec)));
    }
    let mut samples = Vec::new();
    while let Some(block) = reader.next_block()? {
        samples.extend_from_slice(block);
    }
    Ok(Pcm { sample_rate: format.sample_rate, channels: format.channels, samples })
}

/// Decodes a file and yields its chunks one after another; memory stays one chunk and one codec packet, whatever
/// the track's length. The first error ends the iteration (the upload is then refused whole).
pub struct Chunker {
    reader: PcmReader,
    /// Decoded samples not yet in a chunk: less than one chunk, plus at most one packet while filling.
    pending: Vec<i16>,
    chunk_samples: usize,
    next_index: u32,
    done: bool,
}

impl Chunker {
    /// Opens `path` to cut it; the same checks as [`probe`](crate::probe) apply as it is read.
    pub fn open(path: &Path, limits: &Limits) -> Result<Self> {
        let reader = PcmReader::open(path, limits)?;
        let format = reader.format();
        let chunk_samples =
            (format.sample_rate * CHUNK_SECONDS) as usize * usize::from(format.channels);
        Ok(Self {
            reader,
            pending: Vec::with_capacity(chunk_samples),
            chunk_samples,
            next_index: 0,
            done: false,
        })
    }

    /// The format every chunk carries.
    pub fn format(&self) -> Format {
        self.reader.format()
    }

    /// The track's facts, once the iterator has returned `None` after its last chunk.
    pub fn info(&self) -> Option<AudioInfo> {
        self.reader.info()
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        while self.pending.len() < self.chunk_samples {
            match self.reader.next_block()? {
                Some(block) => self.pending.extend_from_slice(block),
                None => break,
            }
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        let take = self.pending.len().min(self.chunk_samples);
        let format = self.reader.format();
        let bytes = encode_chunk(format.sample_rate, format.channels, &self.pending[..take]);
        self.pending.drain(..take);
        let chunk = Chunk {
            index: self.next_index,
            frames: (take / usize::from(format.channels)) as u32,
            bytes,
        };
        self.next_index += 1;
        Ok(Some(chunk))
    }
}

impl Iterator for Chunker {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_chunk().transpose();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(frames: usize, channels: usize) -> Vec<i16> {
        (0..frames * channels).map(|i| ((i * 7919) % 20_000) as i16 - 10_000).collect()
    }

    #[test]
    fn flac_chunks_decode_to_exactly_their_samples() {
        // A full second, a short last chunk, a single frame, mono and stereo.
        for (rate, channels, frames) in
            [(44_100, 2, 44_100), (48_000, 2, 12_345), (8_000, 1, 1), (22_050, 1, 17)]
        {
            let pcm = samples(frames, usize::from(channels));
            let decoded = decode_chunk(&encode_chunk(rate, channels, &pcm)).unwrap();
            assert_eq!(
                decoded,
                Pcm { sample_rate: rate, channels, samples: pcm },
                "{rate} Hz {channels} ch {frames}"
            );
        }
    }

    #[test]
    fn a_chunk_starts_with_the_flac_marker_and_streaminfo() {
        let bytes = encode_chunk(44_100, 2, &samples(100, 2));
        assert_eq!(&bytes[..4], b"fLaC");
        assert_eq!(bytes[4] & 0x7f, 0, "STREAMINFO first");
        assert_eq!(bytes[8..10], bytes[10..12], "fixed block size: minimum = maximum");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        #[test]
        fn any_pcm_survives_a_chunk(
            stereo: bool,
            rate in proptest::sample::select(vec![8_000u32, 22_050, 44_100, 48_000, 96_000]),
            samples in proptest::collection::vec(proptest::num::i16::ANY, 1..6_000),
        ) {
            let channels: u16 = if stereo { 2 } else { 1 };
            let mut samples = samples;
            samples.truncate(samples.len() / usize::from(channels) * usize::from(channels));
            proptest::prop_assume!(!samples.is_empty());
            let decoded = decode_chunk(&encode_chunk(rate, channels, &samples)).unwrap();
            proptest::prop_assert_eq!(decoded, Pcm { sample_rate: rate, channels, samples });
        }
    }

    #[test]
    fn decode_chunk_refuses_other_files() {
        let wav = crate::wav::encode(8_000, 1, &[1, 2, 3]);
        assert_eq!(decode_chunk(&wav).unwrap_err().code(), "audio_corrupt");
        assert_eq!(decode_chunk(&[]).unwrap_err().code(), "audio_empty");
    }
}
