//! Canonical 44-byte-header WAV files of 16-bit little-endian PCM: the demo tracks, and the simplest upload.

use crate::{Error, Pcm, Result};

/// The length of the header before the samples.
pub const HEADER_LEN: usize = 44;

/// Encodes interleaved 16-bit samples as a canonical WAV file.
pub fn encode(sample_rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).expect("a chunk is far below 4 GiB");
    let block_align = channels * 2;
    let mut out = Vec::with_capacity(HEADER_LEN + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // WAVE_FORMAT_PCM
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * u32::from(block_align)).to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

/// Decodes a WAV file of exactly the form [`encode`] writes; anything else is [`Error::Corrupt`].
pub fn decode(bytes: &[u8]) -> Result<Pcm> {
    let bad = |what: &str| Error::Corrupt(format!("chunk: {what}"));
    if bytes.len() < HEADER_LEN {
        return Err(bad("shorter than its header"));
    }
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let u32_at =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if &bytes[0..4] != b"RIFF" || &bytes[8..16] != b"WAVEfmt " || &bytes[36..40] != b"data" {
        return Err(bad("not a canonical WAV header"));
    }
    let (channels, sample_rate) = (u16_at(22), u32_at(24));
    if u32_at(16) != 16 || u16_at(20) != 1 || u16_at(34) != 16 || !(1..=2).contains(&channels) {
        return Err(bad("not 16-bit PCM, mono or stereo"));
    }
    let data_len = u32_at(40) as usize;
    if u32_at(4) as usize != bytes.len() - 8 || data_len != bytes.len() - HEADER_LEN {
        return Err(bad("lengths in the header do not match the file"));
    }
    if !data_len.is_multiple_of(2 * usize::from(channels)) {
        return Err(bad("a partial frame"));
    }
    let samples = bytes[HEADER_LEN..]
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    Ok(Pcm { sample_rate, channels, samples })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let samples: Vec<i16> = (0..200).map(|i| (i * 331 % 65_536 - 32_768) as i16).collect();
        let bytes = encode(44_100, 2, &samples);
        assert_eq!(bytes.len(), HEADER_LEN + 400);
        let pcm = decode(&bytes).unwrap();
        assert_eq!(pcm, Pcm { sample_rate: 44_100, channels: 2, samples });
        assert_eq!(pcm.frames(), 100);
    }

    #[test]
    fn header_fields() {
        let bytes = encode(8_000, 1, &[1, -1]);
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 40);
        assert_eq!(u32::from_le_bytes(bytes[28..32].try_into().unwrap()), 16_000); // byte rate
        assert_eq!(u16::from_le_bytes(bytes[32..34].try_into().unwrap()), 2); // block align
        assert_eq!(&bytes[44..], &[1, 0, 0xff, 0xff]);
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        let bytes = encode(8_000, 1, &[1, 2, 3]);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        let mut wrong_bits = bytes.clone();
        wrong_bits[34] = 24;
        assert!(decode(&wrong_bits).is_err());
        assert!(decode(b"RIFF").is_err());
    }
}
