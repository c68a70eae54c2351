//! Chunk keys released by payment (docs/PROTOCOL.md, "Audio content" and `ack`).
//!
//! A track whose on-chain `contentHash` is the root of audio uploaded to this node plays with keys: at `play` the
//! relay checks the stored manifest against the chain (its recomputed root is the `contentHash`, its chunk count the
//! on-chain `duration`) and opens the track's secret with the node's audio key; afterwards each `ack` carries the
//! keys of the chunks its voucher paid for and no others. A track with no uploaded audio plays without keys.

use alloy::primitives::{B256, U256};
use beatstream_audio::{ChunkKey, Manifest, NodeKey, TrackSecret, chunk_key, open_secret};

use crate::{Error, Result, db::store::StoredAudio};

/// A playable track's audio: its secret, opened, and how many chunks it has.
pub(crate) struct TrackAudio {
    secret: TrackSecret,
    chunk_count: u32,
}

impl std::fmt::Debug for TrackAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackAudio").field("chunk_count", &self.chunk_count).finish_non_exhaustive()
    }
}

impl TrackAudio {
    /// Checks `stored` against the track's on-chain `content_hash` and `duration` and opens its secret.
    pub(crate) fn open(
        stored: &StoredAudio,
        content_hash: B256,
        duration: u32,
        node_key: Option<&NodeKey>,
    ) -> Result<Self> {
        let manifest = Manifest::from_json(stored.manifest.as_bytes()).map_err(|e| {
            Error::AudioMismatch(format!("the stored manifest does not verify: {e}"))
        })?;
        if manifest.root != content_hash {
            return Err(Error::AudioMismatch(format!(
                "the stored chunks' root {} is not the published contentHash {content_hash}",
                manifest.root
            )));
        }
        if manifest.chunk_count != duration
            || i64::from(manifest.chunk_count) != i64::from(stored.chunk_count)
        {
            return Err(Error::AudioMismatch(format!(
                "{} stored chunks for a track published as {duration} seconds",
                manifest.chunk_count
            )));
        }
        let node_key = node_key.ok_or(Error::AudioUnavailable)?;
        let secret =
            open_secret(node_key, &stored.sealed_secret).map_err(|_| Error::AudioUnavailable)?;
        Ok(Self { secret, chunk_count: manifest.chunk_count })
    }

    /// Chunks `[from, to)` with their keys, `to` clamped to the track's chunk count.
    pub(crate) fn keys(&self, from: u32, to: u32) -> Vec<(u32, ChunkKey)> {
        (from..to.min(self.chunk_count)).map(|i| (i, chunk_key(&self.secret, i))).collect()
    }
}

/// Seconds of a session that `cumulative` pays for: `(cumulative − base) / rate`, rounded down; every second when
/// the track is free.
pub(crate) fn paid_seconds(cumulative: U256, base: U256, rate: U256, released: u32) -> u32 {
    if rate.is_zero() {
        return released;
    }
    let paid = cumulative.saturating_sub(base) / rate;
    u32::try_from(paid).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use beatstream_audio::{leaf, seal_secret};

    fn stored(node_key: &NodeKey, secret: &TrackSecret, chunks: u32) -> (StoredAudio, B256) {
        let leaves: Vec<B256> = (0..chunks).map(|i| leaf(&[i as u8; 8])).collect();
        let duration_ms = u64::from(chunks) * 1000 - 500;
        let root =
            beatstream_audio::root(chunks, duration_ms, beatstream_audio::chunks_hash(&leaves));
        let manifest = serde_json::json!({
            "version": 1, "chunkSeconds": 1, "chunkCount": chunks, "durationMs": duration_ms,
            "sampleRate": 44100, "channels": 2, "mimeType": "audio/flac",
            "chunks": leaves, "root": root,
        });
        let audio = StoredAudio {
            chunk_count: chunks as i32,
            sealed_secret: seal_secret(node_key, secret),
            manifest: manifest.to_string(),
        };
        (audio, root)
    }

    #[test]
    fn opens_only_what_matches_the_chain_and_releases_keys_up_to_the_track_end() {
        let node_key = NodeKey::from_bytes([7; 32]);
        let secret = TrackSecret::from_bytes([9; 32]);
        let (audio, root) = stored(&node_key, &secret, 3);
        let opened = TrackAudio::open(&audio, root, 3, Some(&node_key)).unwrap();
        let keys = opened.keys(1, 10);
        assert_eq!(keys.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(keys[0].1.expose(), chunk_key(&secret, 1).expose());

        let other = TrackAudio::open(&audio, B256::repeat_byte(1), 3, Some(&node_key)).unwrap_err();
        assert_eq!(other.code(), "audio_mismatch");
        let longer = TrackAudio::open(&audio, root, 4, Some(&node_key)).unwrap_err();
        assert_eq!(longer.code(), "audio_mismatch");
        let no_key = TrackAudio::open(&audio, root, 3, None).unwrap_err();
        assert_eq!(no_key.code(), "audio_unavailable");
        let wrong_key = TrackAudio::open(&audio, root, 3, Some(&NodeKey::from_bytes([8; 32])));
        assert_eq!(wrong_key.unwrap_err().code(), "audio_unavailable");
        let mut tampered = audio.clone();
        tampered.manifest = tampered.manifest.replacen("\"chunkCount\":3", "\"chunkCount\":2", 1);
        assert_eq!(
            TrackAudio::open(&tampered, root, 3, Some(&node_key)).unwrap_err().code(),
            "audio_mismatch"
        );
    }

    #[test]
    fn paid_seconds_round_down_from_the_session_base() {
        let (base, rate) = (U256::from(1_000), U256::from(100));
        assert_eq!(paid_seconds(U256::from(1_000), base, rate, 5), 0);
        assert_eq!(paid_seconds(U256::from(1_099), base, rate, 5), 0);
        assert_eq!(paid_seconds(U256::from(1_300), base, rate, 5), 3);
        assert_eq!(paid_seconds(U256::from(500), base, rate, 5), 0);
        assert_eq!(paid_seconds(U256::from(500), base, U256::ZERO, 5), 5);
    }
}
