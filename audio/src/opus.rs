//! Ogg Opus packets to PCM with the pure-Rust `opus-pure` (Symphonia demuxes Ogg but decodes no Opus).
//!
//! `opus-pure` rather than `opus-decoder`: the latter panics (a shift overflow in its CELT decoder) on an
//! ordinary `opusenc` file in a debug build, and in a release build wraps where libopus does not. `opus-pure`
//! decodes the fixtures within one LSB of libopus (`opusdec --no-dither`) and survived 20 000 random and
//! damaged packets without a panic; a panic is still caught below, as an upload must never take the node down.

use std::panic::{AssertUnwindSafe, catch_unwind};

use opus_pure::OpusDecoder;

use crate::{Error, Result};

/// The longest Opus packet, 120 ms at 48 kHz, in frames.
const MAX_PACKET_FRAMES: usize = 5760;

/// Decodes the packets of one Ogg Opus stream, applying the header's output gain.
pub(crate) struct OpusPackets {
    decoder: OpusDecoder,
    channels: usize,
    /// The `OpusHead` output gain as a linear factor; `None` when it is 0 dB (the usual case).
    gain: Option<f64>,
    /// Frames of the encoder's pre-skip still to drop from the start of the stream.
    pre_skip: usize,
    scratch: Vec<i16>,
}

impl OpusPackets {
    /// A decoder for the stream whose identification header (`OpusHead`, RFC 7845 §5.1) is `head`.
    pub(crate) fn new(head: &[u8]) -> Result<Self> {
        if head.len() < 19 || &head[..8] != b"OpusHead" {
            return Err(Error::Corrupt("Ogg Opus stream without an OpusHead header".into()));
        }
        let channels = usize::from(head[9]);
        let pre_skip = usize::from(u16::from_le_bytes([head[10], head[11]]));
        let gain_q8 = i16::from_le_bytes([head[16], head[17]]);
        let mapping_family = head[18];
        if mapping_family != 0 || !(1..=2).contains(&channels) {
            return Err(Error::Unsupported(format!(
                "Opus with channel mapping family {mapping_family} and {channels} channels (only mono and stereo)"
            )));
        }
        let decoder = OpusDecoder::new(48_000, channels)
            .map_err(|err| Error::Unsupported(format!("Opus decoder: {err}")))?;
        let gain = (gain_q8 != 0).then(|| 10f64.powf(f64::from(gain_q8) / (20.0 * 256.0)));
        Ok(Self {
            decoder,
            channels,
            gain,
            pre_skip,
            scratch: vec![0; MAX_PACKET_FRAMES * channels],
        })
    }

    /// Frames of pre-skip not yet dropped (all of it before the first packet).
    pub(crate) fn pre_skip(&self) -> usize {
        self.pre_skip
    }

    /// The stream's channel count.
    pub(crate) fn channels(&self) -> usize {
        self.channels
    }

    /// Decodes one packet into `out` (interleaved), dropping `trim_start` frames at its start and `trim_end` at
    /// its end (what the Ogg demuxer says to trim: the final page's padding), and what is left of the header's
    /// pre-skip (RFC 7845 §4.2), which Symphonia 0.6 records but does not trim.
    pub(crate) fn decode(
        &mut self,
        packet: &[u8],
        trim_start: usize,
        trim_end: usize,
        out: &mut Vec<i16>,
    ) -> Result<()> {
        out.clear();
        if packet.is_empty() {
            // An empty packet would ask the decoder to conceal a loss: in a file it is damage.
            return Err(Error::Corrupt("empty Opus packet".into()));
        }
        // `decode_s16` soft-clips as libopus's `opus_decode` does, rather than saturating.
        let decoded = catch_unwind(AssertUnwindSafe(|| {
            self.decoder.decode_s16(packet, MAX_PACKET_FRAMES, &mut self.scratch)
        }))
        .map_err(|_| Error::Corrupt("the Opus decoder failed on a packet".into()))?;
        let frames = decoded.map_err(|err| Error::Corrupt(format!("Opus packet: {err}")))?;
        // Whatever part of the pre-skip the demuxer trims counts against it, so a Symphonia that starts
        // trimming it cannot make us drop it twice.
        self.pre_skip = self.pre_skip.saturating_sub(trim_start);
        let skip = self.pre_skip.min(frames.saturating_sub(trim_start));
        self.pre_skip -= skip;
        let start = (trim_start + skip).min(frames);
        let end = frames.saturating_sub(trim_end).max(start);
        let pcm = &self.scratch[start * self.channels..end * self.channels];
        match self.gain {
            None => out.extend_from_slice(pcm),
            Some(gain) => out.extend(pcm.iter().map(|&s| {
                (f64::from(s) * gain).round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
            })),
        }
        Ok(())
    }
}
