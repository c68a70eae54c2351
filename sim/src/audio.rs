//! A player's side of a track's audio: fetch and check the manifest against the track's on-chain `contentHash` and
//! `duration`, then fetch each chunk whose key an ack released, check it against the manifest, decrypt and decode
//! it (docs/PROTOCOL.md, "Audio content").

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use alloy::primitives::B256;
use beatstream_audio::{ChunkKey, Manifest, decode_chunk, decrypt_chunk};
use beatstream_stream_relay::protocol::ChunkKeyFrame;
use url::Url;

use crate::{Error, Result};

/// How long one manifest or chunk request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// What players counted of the audio they fetched.
#[derive(Debug, Default)]
pub struct AudioCounters {
    /// Chunk keys received in acks.
    pub keys: AtomicU64,
    /// Chunks fetched, verified against the manifest, decrypted and decoded: seconds of audio.
    pub verified: AtomicU64,
    /// Failures by code (`audio_fetch`, `audio_verify`, `audio_decrypt`, `audio_decode`, `audio_key`).
    pub failures: Mutex<BTreeMap<String, u64>>,
}

impl AudioCounters {
    fn fail(&self, code: &str) {
        *self.failures.lock().expect("not poisoned").entry(code.to_owned()).or_insert(0) += 1;
    }

    /// Failures counted so far.
    pub fn failed(&self) -> u64 {
        self.failures.lock().expect("not poisoned").values().sum()
    }
}

/// One track's audio as the node serves it, its manifest checked against the chain.
#[derive(Debug)]
pub struct TrackAudio {
    http: reqwest::Client,
    base: Url,
    /// The verified manifest.
    pub manifest: Manifest,
}

/// A client for fetching audio.
pub fn http_client() -> Result<reqwest::Client> {
    beatstream_primitives::tls::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|e| Error::Audio(format!("building the HTTP client: {e}")))
}

impl TrackAudio {
    /// Fetches `<base>/audio/<content_hash>/manifest.json` and checks it: its own root, the root equal to the
    /// on-chain `content_hash`, its chunk count equal to the on-chain `duration`. `None` when the node has no audio
    /// for the track (404): a track without audio, played as before.
    pub async fn fetch(
        http: &reqwest::Client,
        base: &Url,
        content_hash: B256,
        duration: u32,
    ) -> Result<Option<Self>> {
        let url = join(base, &format!("audio/{content_hash}/manifest.json"))?;
        let response = http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| Error::Audio(format!("GET {url}: {e}")))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(Error::Audio(format!("GET {url}: {}", response.status())));
        }
        let body = response.bytes().await.map_err(|e| Error::Audio(format!("GET {url}: {e}")))?;
        let manifest = Manifest::from_json(&body)
            .map_err(|e| Error::Audio(format!("manifest of {content_hash}: {e}")))?;
        manifest.verify().map_err(|e| Error::Audio(format!("manifest of {content_hash}: {e}")))?;
        if manifest.root != content_hash {
            return Err(Error::Audio(format!(
                "manifest root {} is not the on-chain contentHash {content_hash}",
                manifest.root
            )));
        }
        if manifest.chunk_count != duration {
            return Err(Error::Audio(format!(
                "manifest of {content_hash} has {} chunks, the track lasts {duration} s on-chain",
                manifest.chunk_count
            )));
        }
        Ok(Some(Self { http: http.clone(), base: base.clone(), manifest }))
    }

    /// Fetches, verifies, decrypts and decodes the chunk of each key, counting into `counters`.
    pub async fn play(&self, keys: &[ChunkKeyFrame], counters: &AudioCounters) {
        for key in keys {
            counters.keys.fetch_add(1, Ordering::Relaxed);
            match self.chunk(key).await {
                Ok(()) => {
                    counters.verified.fetch_add(1, Ordering::Relaxed);
                }
                Err(code) => counters.fail(code),
            }
        }
    }

    /// One chunk; an `Err` is the failure's code.
    async fn chunk(&self, key: &ChunkKeyFrame) -> std::result::Result<(), &'static str> {
        let bytes: [u8; 32] =
            alloy::hex::decode(&key.key).ok().and_then(|b| b.try_into().ok()).ok_or("audio_key")?;
        let key_bytes = ChunkKey::from_bytes(bytes);
        let root = self.manifest.root;
        let url =
            join(&self.base, &format!("audio/{root}/{}", key.index)).map_err(|_| "audio_fetch")?;
        let response = self.http.get(url).send().await.map_err(|_| "audio_fetch")?;
        if !response.status().is_success() {
            return Err("audio_fetch");
        }
        let stored = response.bytes().await.map_err(|_| "audio_fetch")?;
        self.manifest.verify_chunk(key.index, &stored).map_err(|_| "audio_verify")?;
        let plain = decrypt_chunk(&key_bytes, key.index, &stored).map_err(|_| "audio_decrypt")?;
        decode_chunk(&plain).map_err(|_| "audio_decode")?;
        Ok(())
    }
}

/// `path` under `base`, whether or not `base` ends with a slash.
fn join(base: &Url, path: &str) -> Result<Url> {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(path).map_err(|e| Error::Audio(format!("{base}{path}: {e}")))
}

/// What a player that listens needs: the track's checked audio and where to count.
#[derive(Clone, Debug)]
pub struct Listening {
    /// The track's audio.
    pub track: std::sync::Arc<TrackAudio>,
    /// Shared counters.
    pub counters: std::sync::Arc<AudioCounters>,
}
