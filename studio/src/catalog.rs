//! The uploaded tracks a request names, by root: from Postgres once, then from memory. A manifest never changes
//! once its row is written, so a cached one is never stale; only tracks that exist are cached.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use alloy::primitives::B256;
use axum::body::Bytes;
use beatstream_audio::Manifest;

use crate::{Error, Result, db::Db};

/// Tracks kept in memory. A manifest is about 100 bytes per second of audio (a 5-minute track, 30 KB), so this
/// holds a few megabytes for ordinary tracks, at most about 100 MB of 30-minute ones.
pub(crate) const CACHED_TRACKS: usize = 512;

/// An uploaded track, as served.
#[derive(Debug)]
pub(crate) struct Track {
    /// Its manifest.
    pub(crate) manifest: Manifest,
    /// The manifest's JSON, the bytes stored at `tracks/<root>/manifest.json` and served.
    pub(crate) json: Bytes,
}

/// Tracks by root, read through a bounded cache.
#[derive(Debug)]
pub(crate) struct Catalog {
    cache: Mutex<HashMap<B256, Arc<Track>>>,
}

impl Catalog {
    /// An empty catalog.
    pub(crate) fn new() -> Self {
        Self { cache: Mutex::new(HashMap::new()) }
    }

    /// The track `root`, if it was uploaded here (on this chain).
    pub(crate) async fn track(&self, db: &Db, root: B256) -> Result<Option<Arc<Track>>> {
        if let Some(track) = self.lock().get(&root) {
            return Ok(Some(track.clone()));
        }
        let Some(manifest) = db.manifest(root).await? else { return Ok(None) };
        // The row was written from a verified manifest; one that no longer verifies was changed in the database.
        manifest.verify().map_err(|e| {
            Error::Database(format!("the stored manifest of {root} does not verify: {e}").into())
        })?;
        let track = Arc::new(Track { json: manifest.to_json().into(), manifest });
        let mut cache = self.lock();
        if cache.len() >= CACHED_TRACKS {
            // Any one goes: a miss costs one primary-key read.
            if let Some(evicted) = cache.keys().next().copied() {
                cache.remove(&evicted);
            }
        }
        cache.insert(root, track.clone());
        Ok(Some(track))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<B256, Arc<Track>>> {
        // The map is consistent after any panic: inserts and removes are single calls.
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
