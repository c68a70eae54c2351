//! A source file decoded to 16-bit PCM packet by packet, holding the upload to its limits as it goes.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::Path,
};

use symphonia::core::{
    codecs::audio::{AudioDecoder, AudioDecoderOptions, well_known as codec_ids},
    errors::Error as SymphoniaError,
    formats::{FormatOptions, FormatReader, TrackType, probe::Hint},
    io::{MediaSource, MediaSourceStream},
    meta::MetadataOptions,
    units::Timestamp,
};

use crate::{
    AudioInfo, Codec, Error, Format, Limits, Result, info::duration_ms, opus::OpusPackets,
};

/// Sample rates taken, in Hz: what a browser's `AudioContext` accepts, within reason.
const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 8_000..=192_000;

/// Decodes a file to interleaved 16-bit PCM, one codec packet at a time; memory stays one packet whatever the
/// track's length.
///
/// Every packet must decode: a decoding error, a stream that ends early, or a header whose frame count the
/// stream does not hold gives [`Error::Corrupt`]. Samples of more than 16 bits are cut to their top 16 bits,
/// float samples scaled by 32 768 and clamped (Symphonia's conversions).
pub struct PcmReader {
    format: Box<dyn FormatReader>,
    track_id: u32,
    decoder: Decoder,
    spec: Format,
    /// Frames the container's header announces, if it does; only a check, never the answer.
    announced_frames: Option<u64>,
    /// Where the next packet must start, at the latest, in the track's time base: a later one means frames
    /// were lost (a damaged page or frame the demuxer skipped).
    next_pts: Timestamp,
    limits: Limits,
    frames: u64,
    pcm: Vec<i16>,
    finished: bool,
}

enum Decoder {
    Symphonia(Box<dyn AudioDecoder>),
    Opus(Box<OpusPackets>),
}

impl PcmReader {
    /// Opens `path` and reads its headers; the content, not the file's name, decides what it is.
    pub fn open(path: &Path, limits: &Limits) -> Result<Self> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut head = [0u8; 12];
        let read = file.read(&mut head)?;
        file.seek(SeekFrom::Start(0))?;
        Self::new(Box::new(file), len, Signature::of(&head[..read]), limits)
    }

    /// Reads a file already in memory (a chunk, say).
    pub fn from_bytes(bytes: Vec<u8>, limits: &Limits) -> Result<Self> {
        let len = bytes.len() as u64;
        let signature = Signature::of(&bytes[..bytes.len().min(12)]);
        Self::new(Box::new(std::io::Cursor::new(bytes)), len, signature, limits)
    }

    /// `signature` tells a damaged file of a format taken (refused as corrupt) from another kind of file.
    fn new(
        source: Box<dyn MediaSource>,
        len: u64,
        signature: Signature,
        limits: &Limits,
    ) -> Result<Self> {
        if len == 0 {
            return Err(Error::Empty);
        }
        if len > limits.max_bytes {
            return Err(Error::TooLarge { max_bytes: limits.max_bytes });
        }
        let source = MediaSourceStream::new(source, Default::default());
        let format = symphonia::default::get_probe()
            .probe(&Hint::new(), source, FormatOptions::default(), MetadataOptions::default())
            .map_err(|err| match err {
                SymphoniaError::IoError(_) if signature != Signature::Unknown => {
                    Error::Corrupt("the file ends inside its headers".into())
                }
                SymphoniaError::Unsupported(_) if signature == Signature::Mp3 => Error::Corrupt(
                    "the file starts like an MP3 but holds no run of MP3 frames".into(),
                ),
                SymphoniaError::IoError(_) | SymphoniaError::Unsupported(_) => {
                    Error::Unsupported("not an MP3, Ogg Opus, FLAC or WAV file".into())
                }
                other => corrupt(other),
            })?;

        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| Error::Unsupported("no audio track".into()))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|params| params.audio())
            .ok_or_else(|| Error::Unsupported("no audio track".into()))?;
        let codec = codec_of(params.codec).ok_or_else(|| {
            Error::Unsupported(format!("codec {} (only MP3, Opus, FLAC and PCM)", params.codec))
        })?;

        let (decoder, channels, sample_rate) = match codec {
            Codec::Opus => {
                let head = params.extra_data.as_deref().ok_or_else(|| {
                    Error::Corrupt("Ogg Opus stream without an OpusHead header".into())
                })?;
                let opus = OpusPackets::new(head)?;
                let channels = opus.channels();
                (Decoder::Opus(Box::new(opus)), channels, Some(48_000))
            }
            _ => {
                let decoder = symphonia::default::get_codecs()
                    .make_audio_decoder(params, &AudioDecoderOptions::default().verify(true))
                    .map_err(|err| match err {
                        SymphoniaError::Unsupported(what) => Error::Unsupported(what.into()),
                        other => corrupt(other),
                    })?;
                let channels = params.channels.as_ref().map(|channels| channels.count());
                let channels = channels
                    .ok_or_else(|| Error::Corrupt("the header gives no channel count".into()))?;
                (Decoder::Symphonia(decoder), channels, params.sample_rate)
            }
        };
        let sample_rate =
            sample_rate.ok_or_else(|| Error::Corrupt("the header gives no sample rate".into()))?;
        if !SAMPLE_RATES.contains(&sample_rate) {
            return Err(Error::Unsupported(format!("sample rate {sample_rate} Hz (8 to 192 kHz)")));
        }
        if !(1..=2).contains(&channels) {
            return Err(Error::Unsupported(format!("{channels} channels (only mono and stereo)")));
        }

        let track_id = track.id;
        let next_pts = track.start_ts;
        let announced_frames = match &decoder {
            // Ogg's count is the last granule position, which includes the pre-skip.
            Decoder::Opus(opus) => {
                track.num_frames.map(|n| n.saturating_sub(opus.pre_skip() as u64))
            }
            Decoder::Symphonia(_) => track.num_frames,
        };
        let spec = Format { codec, sample_rate, channels: channels as u16 };
        Ok(Self {
            format,
            track_id,
            decoder,
            spec,
            announced_frames,
            next_pts,
            limits: *limits,
            frames: 0,
            pcm: Vec::new(),
            finished: false,
        })
    }

    /// The codec, sample rate and channels of the decoded audio.
    pub fn format(&self) -> Format {
        self.spec
    }

    /// Frames decoded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The whole track's facts, once [`next_block`](Self::next_block) has returned `None`.
    pub fn info(&self) -> Option<AudioInfo> {
        self.finished.then_some(AudioInfo { format: self.spec, frames: self.frames })
    }

    /// The next decoded block (interleaved, at least one frame), or `None` at the end of a sound stream. An error
    /// refuses the whole file: read no further.
    pub fn next_block(&mut self) -> Result<Option<&[i16]>> {
        if self.finished {
            return Ok(None);
        }
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => {
                    self.finish()?;
                    return Ok(None);
                }
                Err(err) => return Err(corrupt(err)),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            if packet.pts > self.next_pts {
                return Err(Error::Corrupt(format!(
                    "frames {} to {} are missing",
                    self.next_pts.get(),
                    packet.pts.get()
                )));
            }
            self.next_pts = packet
                .pts
                .checked_add(packet.block_dur())
                .ok_or_else(|| Error::Corrupt("timestamps overflow".into()))?;
            match &mut self.decoder {
                Decoder::Symphonia(decoder) => {
                    let decoded = decoder.decode(&packet).map_err(corrupt)?;
                    let spec = decoded.spec();
                    if spec.rate() != self.spec.sample_rate
                        || spec.channels().count() != usize::from(self.spec.channels)
                    {
                        return Err(Error::Unsupported(
                            "the sample rate or channels change within the stream".into(),
                        ));
                    }
                    decoded.copy_to_vec_interleaved(&mut self.pcm);
                }
                Decoder::Opus(opus) => opus.decode(
                    &packet.data,
                    packet.trim_start.get() as usize,
                    packet.trim_end.get() as usize,
                    &mut self.pcm,
                )?,
            }
            if self.pcm.is_empty() {
                continue;
            }
            self.frames += (self.pcm.len() / usize::from(self.spec.channels)) as u64;
            if duration_ms(self.frames, self.spec.sample_rate) > self.limits.max_duration_ms {
                return Err(Error::TooLong { max_ms: self.limits.max_duration_ms });
            }
            return Ok(Some(&self.pcm));
        }
    }

    /// The checks only the end of the stream allows.
    fn finish(&mut self) -> Result<()> {
        if let Decoder::Symphonia(decoder) = &mut self.decoder {
            // FLAC's MD5 of the decoded audio, when the encoder wrote one: catches damage that the frames' own
            // CRCs let through (Symphonia resynchronises past a bad frame rather than failing).
            if decoder.finalize().verify_ok == Some(false) {
                return Err(Error::Corrupt(
                    "the decoded audio does not match the file's checksum".into(),
                ));
            }
        }
        if self.spec.codec == Codec::Opus && self.announced_frames.is_none() {
            // Symphonia finds an Ogg stream's length in its last page; a stream whose end it cannot find was cut
            // short or damaged (a bad page in the middle can end it early without an error).
            return Err(Error::Corrupt("the Ogg stream's last page is missing or damaged".into()));
        }
        if let Some(announced) = self.announced_frames {
            // Checked before emptiness: a header that promises audio the file lacks is damage, not emptiness.
            if announced != self.frames {
                return Err(Error::Corrupt(format!(
                    "the header announces {announced} frames, the stream holds {}",
                    self.frames
                )));
            }
        }
        if self.frames == 0 {
            return Err(Error::Empty);
        }
        self.finished = true;
        Ok(())
    }
}

/// Reads `path` to its end and returns what it really holds; [`PcmReader`]'s errors apply.
pub fn probe(path: &Path, limits: &Limits) -> Result<AudioInfo> {
    let mut reader = PcmReader::open(path, limits)?;
    while reader.next_block()?.is_some() {}
    Ok(reader.info().expect("the reader reached the end"))
}

/// What a file's first bytes say it is, before Symphonia looks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Signature {
    /// An ID3 tag or an MPEG Layer III frame sync: MP3.
    Mp3,
    /// `fLaC`, `OggS` or `RIFF….WAVE`.
    Container,
    /// Anything else.
    Unknown,
}

impl Signature {
    fn of(head: &[u8]) -> Self {
        // Sync (11 bits) and layer bits `01`: Layer III only, so AAC's ADTS and MPEG layers I and II stay unknown.
        let layer_3 = head.len() >= 2 && head[0] == 0xff && head[1] & 0xe6 == 0xe2;
        if head.starts_with(b"ID3") || layer_3 {
            Self::Mp3
        } else if head.starts_with(b"fLaC")
            || head.starts_with(b"OggS")
            || (head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WAVE"))
        {
            Self::Container
        } else {
            Self::Unknown
        }
    }
}

fn codec_of(id: symphonia::core::codecs::audio::AudioCodecId) -> Option<Codec> {
    use codec_ids::*;
    Some(match id {
        CODEC_ID_MP3 => Codec::Mp3,
        CODEC_ID_OPUS => Codec::Opus,
        CODEC_ID_FLAC => Codec::Flac,
        CODEC_ID_PCM_S32LE | CODEC_ID_PCM_S32BE | CODEC_ID_PCM_S24LE | CODEC_ID_PCM_S24BE
        | CODEC_ID_PCM_S16LE | CODEC_ID_PCM_S16BE | CODEC_ID_PCM_S8 | CODEC_ID_PCM_U32LE
        | CODEC_ID_PCM_U32BE | CODEC_ID_PCM_U24LE | CODEC_ID_PCM_U24BE | CODEC_ID_PCM_U16LE
        | CODEC_ID_PCM_U16BE | CODEC_ID_PCM_U8 | CODEC_ID_PCM_F32LE | CODEC_ID_PCM_F32BE
        | CODEC_ID_PCM_F64LE | CODEC_ID_PCM_F64BE | CODEC_ID_PCM_ALAW | CODEC_ID_PCM_MULAW => {
            Codec::Pcm
        }
        _ => return None,
    })
}

/// A Symphonia error met while reading a file it recognised: the file is damaged, unless Symphonia says the
/// stream uses something it does not implement.
fn corrupt(err: SymphoniaError) -> Error {
    match err {
        SymphoniaError::Unsupported(what) => Error::Unsupported(what.into()),
        SymphoniaError::ResetRequired => {
            Error::Unsupported("a chained stream (tracks one after another)".into())
        }
        other => Error::Corrupt(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        assert!(Signature::of(&[0xff, 0xfb, 0x90, 0x64]) == Signature::Mp3, "MPEG-1 Layer III");
        assert!(Signature::of(&[0xff, 0xf3, 0x40, 0xc4]) == Signature::Mp3, "MPEG-2 Layer III");
        assert!(Signature::of(b"ID3\x04\x00") == Signature::Mp3);
        assert!(Signature::of(&[0xff, 0xf1, 0x50, 0x80]) == Signature::Unknown, "AAC in ADTS");
        assert!(Signature::of(&[0xff, 0xfd, 0x90, 0x04]) == Signature::Unknown, "MPEG-1 Layer II");
        assert!(Signature::of(b"fLaC\x80") == Signature::Container);
        assert!(Signature::of(b"OggS\x00\x02") == Signature::Container);
        assert!(Signature::of(b"RIFF\x24\x00\x00\x00WAVE") == Signature::Container);
        assert!(Signature::of(b"RIFF\x24\x00\x00\x00AVI ") == Signature::Unknown);
        assert!(Signature::of(b"") == Signature::Unknown);
    }
}
