//! The commitment to a track's stored chunks: the root recorded on-chain as the track's `contentHash`, and the
//! manifest a player fetches to check each chunk against it.

use alloy::{
    primitives::{B256, keccak256},
    sol_types::SolValue,
};
use serde::{Deserialize, Serialize};

use crate::{AudioInfo, CHUNK_MIME_TYPE, CHUNK_SECONDS, Error, Result};

/// The manifest format this crate writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// Leaf `i`: keccak256 of stored chunk `i`'s bytes (ciphertext ‖ tag).
pub fn leaf(stored_chunk: &[u8]) -> B256 {
    keccak256(stored_chunk)
}

/// keccak256 of the leaves concatenated in order (32 bytes each).
pub fn chunks_hash(leaves: &[B256]) -> B256 {
    keccak256(leaves.iter().flat_map(|leaf| leaf.0).collect::<Vec<u8>>())
}

/// The track's root: keccak256(abi.encode(uint32 chunkCount, uint64 durationMs, bytes32 chunksHash)).
pub fn root(chunk_count: u32, duration_ms: u64, chunks_hash: B256) -> B256 {
    keccak256((chunk_count, duration_ms, chunks_hash).abi_encode_params())
}

/// What a player fetches beside the chunks: the track's facts, every chunk's hash and the root over them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// Seconds per chunk, [`CHUNK_SECONDS`].
    pub chunk_seconds: u32,
    /// Chunks in the track; the track's on-chain `duration` in seconds.
    pub chunk_count: u32,
    /// The decoded audio's length in milliseconds, rounded up.
    pub duration_ms: u64,
    /// Frames per second of every chunk.
    pub sample_rate: u32,
    /// Channels of every chunk.
    pub channels: u16,
    /// The chunks' plaintext type, `audio/flac`.
    pub mime_type: String,
    /// Leaf `i` for each chunk `i`, as `0x`-prefixed hex.
    pub chunks: Vec<B256>,
    /// The root over the above, the track's on-chain `contentHash`.
    pub root: B256,
}

impl Manifest {
    /// The manifest of a track with `info` whose stored chunks have these leaves.
    pub fn new(info: &AudioInfo, chunks: Vec<B256>) -> Result<Self> {
        if chunks.len() != info.chunk_count() as usize {
            return Err(Error::Manifest(format!(
                "{} chunk hashes for a track of {} chunks",
                chunks.len(),
                info.chunk_count()
            )));
        }
        let root = root(info.chunk_count(), info.duration_ms(), chunks_hash(&chunks));
        Ok(Self {
            version: MANIFEST_VERSION,
            chunk_seconds: CHUNK_SECONDS,
            chunk_count: info.chunk_count(),
            duration_ms: info.duration_ms(),
            sample_rate: info.format.sample_rate,
            channels: info.format.channels,
            mime_type: CHUNK_MIME_TYPE.to_owned(),
            chunks,
            root,
        })
    }

    /// Parses a manifest's JSON and [`verify`](Self::verify)s it.
    pub fn from_json(json: &[u8]) -> Result<Self> {
        let manifest: Self = serde_json::from_slice(json)
            .map_err(|err| Error::Manifest(format!("not a manifest: {err}")))?;
        manifest.verify()?;
        Ok(manifest)
    }

    /// The manifest as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest always serialises")
    }

    /// Checks the manifest is one this crate writes and that `root` commits to its chunk hashes, chunk count
    /// and duration; then a root equal to the track's on-chain `contentHash` vouches for every chunk hash.
    pub fn verify(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Manifest(what));
        if self.version != MANIFEST_VERSION || self.chunk_seconds != CHUNK_SECONDS {
            return bad(format!("version {} with {} s chunks", self.version, self.chunk_seconds));
        }
        if self.mime_type != CHUNK_MIME_TYPE
            || self.sample_rate == 0
            || !(1..=2).contains(&self.channels)
        {
            return bad(format!(
                "{} at {} Hz, {} channels",
                self.mime_type, self.sample_rate, self.channels
            ));
        }
        if self.chunks.len() != self.chunk_count as usize {
            return bad(format!(
                "{} chunk hashes, chunkCount {}",
                self.chunks.len(),
                self.chunk_count
            ));
        }
        if self.duration_ms.div_ceil(1000) != u64::from(self.chunk_count) {
            return bad(format!("{} ms do not make {} chunks", self.duration_ms, self.chunk_count));
        }
        let computed = root(self.chunk_count, self.duration_ms, chunks_hash(&self.chunks));
        if computed != self.root {
            return bad(format!("the root is {computed}, not {}", self.root));
        }
        Ok(())
    }

    /// Checks that `stored` (ciphertext ‖ tag, as fetched) is chunk `index` of this manifest.
    pub fn verify_chunk(&self, index: u32, stored: &[u8]) -> Result<()> {
        let expected = self.chunks.get(index as usize).ok_or_else(|| {
            Error::Manifest(format!("no chunk {index} in {} chunks", self.chunk_count))
        })?;
        if leaf(stored) != *expected {
            return Err(Error::Manifest(format!("chunk {index} does not match its hash")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Codec, Format};

    fn info(frames: u64) -> AudioInfo {
        AudioInfo { format: Format { codec: Codec::Mp3, sample_rate: 48_000, channels: 2 }, frames }
    }

    fn manifest() -> Manifest {
        let chunks = (0..3u8).map(|i| leaf(&[i; 10])).collect();
        Manifest::new(&info(120_000), chunks).unwrap()
    }

    #[test]
    fn root_is_keccak_of_three_abi_words() {
        let hash = B256::repeat_byte(0xab);
        let mut encoded = [0u8; 96];
        encoded[28..32].copy_from_slice(&3u32.to_be_bytes());
        encoded[56..64].copy_from_slice(&2500u64.to_be_bytes());
        encoded[64..].copy_from_slice(hash.as_slice());
        assert_eq!(root(3, 2500, hash), keccak256(encoded));
    }

    #[test]
    fn chunks_hash_is_keccak_of_the_concatenation() {
        let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
        assert_eq!(chunks_hash(&[a, b]), keccak256([a.as_slice(), b.as_slice()].concat()));
        assert_eq!(chunks_hash(&[]), keccak256([]));
    }

    #[test]
    fn json_is_camel_case_with_hex_hashes_and_round_trips() {
        let m = manifest();
        let json: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["chunkSeconds"], 1);
        assert_eq!(json["chunkCount"], 3);
        assert_eq!(json["durationMs"], 2500);
        assert_eq!(json["sampleRate"], 48_000);
        assert_eq!(json["mimeType"], "audio/flac");
        assert!(json["root"].as_str().unwrap().starts_with("0x"));
        assert_eq!(json["chunks"][1].as_str().unwrap(), format!("{}", leaf(&[1; 10])));
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn verify_catches_every_kind_of_lie() {
        let m = manifest();
        m.verify().unwrap();
        let mut swapped = m.clone();
        swapped.chunks.swap(0, 1);
        assert!(swapped.verify().is_err());
        let mut longer = m.clone();
        longer.duration_ms = 3001;
        assert!(longer.verify().is_err());
        let mut recounted = m.clone();
        recounted.duration_ms = 3000;
        assert!(recounted.verify().is_err(), "duration is in the root");
        let mut dropped = m.clone();
        dropped.chunks.pop();
        assert!(dropped.verify().is_err());
        assert!(Manifest::new(&info(120_000), vec![B256::ZERO]).is_err());
    }

    #[test]
    fn verify_chunk() {
        let m = manifest();
        m.verify_chunk(2, &[2; 10]).unwrap();
        assert!(m.verify_chunk(1, &[2; 10]).is_err());
        assert!(m.verify_chunk(3, &[2; 10]).is_err());
    }
}
