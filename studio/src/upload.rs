//! An upload, from its body to a stored track: the body streamed to a temporary file under a byte limit; the file
//! probed, cut, encrypted and hashed by the audio crate on a blocking thread, each chunk put to the store as it comes
//! (a few at once, never the whole track in memory); then the manifest, then the row with the sealed secret.
//!
//! A refused or failed upload leaves nothing: no row, no manifest, and none of the chunk objects it wrote (a chunk
//! that was already stored, identical bytes of another upload, is left alone). The temporary file is removed in
//! every case, when its `NamedTempFile` drops.

use std::{collections::HashSet, path::Path};

use alloy::primitives::{Address, B256};
use axum::body::Bytes;
use beatstream_audio::{
    ByteLimit, Limits, Manifest, NodeKey, StoredChunk, TrackChunks, TrackSecret, seal_secret,
};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tempfile::NamedTempFile;
use tokio::{io::AsyncWriteExt, sync::mpsc};
use tracing::{info, warn};

use crate::{
    Error, Result,
    db::{Db, NewTrack},
    storage::Storage,
};

/// Chunks cut and waiting for the store.
const CHUNKS_QUEUED: usize = 2;
/// Chunks being put to the store at once.
const PUTS_IN_FLIGHT: usize = 4;

/// A stored track, as `POST /studio/artists/{label}/tracks` answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Uploaded {
    /// The root over the stored chunks: the track's `contentHash` when it is published.
    pub root: B256,
    /// The number of one-second chunks.
    pub chunk_count: u32,
    /// The decoded audio's length in milliseconds, rounded up.
    pub duration_ms: u64,
    /// Seconds to publish as the track's `duration`: the chunk count.
    pub duration: u32,
    /// Frames per second of every chunk.
    pub sample_rate: u32,
    /// Channels of every chunk.
    pub channels: u16,
    /// The chunks' plaintext type.
    pub mime_type: String,
    /// Where the manifest is served, relative to the node.
    pub manifest_url: String,
}

impl Uploaded {
    fn new(manifest: &Manifest) -> Self {
        Self {
            root: manifest.root,
            chunk_count: manifest.chunk_count,
            duration_ms: manifest.duration_ms,
            duration: manifest.chunk_count,
            sample_rate: manifest.sample_rate,
            channels: manifest.channels,
            mime_type: manifest.mime_type.clone(),
            manifest_url: format!("/audio/{}/manifest.json", manifest.root),
        }
    }
}

/// Who uploads: the artist node and the signed-in address.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Owner {
    /// The artist node.
    pub(crate) node: B256,
    /// The signed-in address.
    pub(crate) address: Address,
}

/// Streams `body` into a new temporary file in `dir`, refusing it (`audio_too_large`) as soon as it passes `max`
/// bytes. The file is removed when the returned handle drops, and on any error.
pub(crate) async fn receive<S, E>(dir: &Path, mut body: S, max: u64) -> Result<NamedTempFile>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let temp = tempfile::Builder::new()
        .prefix("beatstream-upload-")
        .tempfile_in(dir)
        .map_err(|e| Error::Internal(format!("creating a file in {}: {e}", dir.display())))?;
    let write_error =
        |e: std::io::Error| Error::Internal(format!("writing {}: {e}", temp.path().display()));
    let mut file = tokio::fs::File::from_std(temp.reopen().map_err(write_error)?);
    let mut limit = ByteLimit::new(max);
    while let Some(bytes) = body.next().await {
        let bytes = bytes.map_err(|e| Error::BadRequest(format!("reading the upload: {e}")))?;
        limit.add(bytes.len()).map_err(Error::Audio)?;
        file.write_all(&bytes).await.map_err(write_error)?;
    }
    file.flush().await.map_err(write_error)?;
    Ok(temp)
}

/// Cuts the received `file` into chunks and stores the track: chunks, manifest, row. Everything it stored is
/// removed again if it fails; `file` is removed when it returns.
pub(crate) async fn store(
    storage: Storage,
    db: Db,
    node_key: NodeKey,
    limits: Limits,
    owner: Owner,
    file: NamedTempFile,
) -> Result<Uploaded> {
    let secret = TrackSecret::generate();
    let sealed = seal_secret(&node_key, &secret);
    let (tx, rx) = mpsc::channel(CHUNKS_QUEUED);
    let path = file.path().to_owned();
    let cutter = tokio::task::spawn_blocking(move || cut(&path, &limits, &secret, tx));

    let mut attempted = Vec::new();
    let mut existed = HashSet::new();
    let put = put_chunks(&storage, rx, &mut attempted, &mut existed).await;
    // Once `put` returns, the channel is closed: the cutter stops at its next chunk, if it had not ended.
    let cut = cutter.await.map_err(|e| Error::Internal(format!("the chunking task: {e}")));
    let outcome = match (put, cut) {
        (Err(e), _) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(Err(e))) => Err(Error::Audio(e)),
        (Ok(()), Ok(Ok(None))) => {
            Err(Error::Internal("the chunker ended without a manifest".into()))
        }
        (Ok(()), Ok(Ok(Some(manifest)))) => {
            finish(&storage, &db, &manifest, owner, &sealed).await.map(|()| manifest)
        }
    };
    drop(file);
    match outcome {
        Ok(manifest) => {
            info!(
                target: "beatstream::studio",
                root = %manifest.root,
                artist = %owner.node,
                chunks = manifest.chunk_count,
                duration_ms = manifest.duration_ms,
                "track stored"
            );
            Ok(Uploaded::new(&manifest))
        }
        Err(e) => {
            let written: Vec<_> = attempted.into_iter().filter(|h| !existed.contains(h)).collect();
            remove_chunks(&storage, &written).await;
            Err(e)
        }
    }
}

/// On a blocking thread: cuts, encrypts and hashes the file, sending each chunk to the store side; the manifest
/// once the file is cut, or `None` when the store side stopped listening.
fn cut(
    path: &Path,
    limits: &Limits,
    secret: &TrackSecret,
    tx: mpsc::Sender<StoredChunk>,
) -> beatstream_audio::Result<Option<Manifest>> {
    let mut track = TrackChunks::open(path, limits, secret)?;
    for chunk in track.by_ref() {
        if tx.blocking_send(chunk?).is_err() {
            return Ok(None);
        }
    }
    Ok(track.manifest().cloned())
}

/// Puts each chunk from `rx` to the store, [`PUTS_IN_FLIGHT`] at a time, until the channel closes or a put fails.
/// Every chunk it started to put is in `attempted`; those that were stored already are in `existed`.
async fn put_chunks(
    storage: &Storage,
    mut rx: mpsc::Receiver<StoredChunk>,
    attempted: &mut Vec<B256>,
    existed: &mut HashSet<B256>,
) -> Result<()> {
    let chunks = futures_util::stream::poll_fn(|cx| rx.poll_recv(cx));
    let mut puts = chunks
        .map(|chunk| {
            attempted.push(chunk.hash);
            async move { (chunk.hash, storage.put_chunk(chunk.hash, chunk.bytes).await) }
        })
        .buffer_unordered(PUTS_IN_FLIGHT);
    while let Some((hash, put)) = puts.next().await {
        if !put? {
            existed.insert(hash);
        }
    }
    Ok(())
}

/// Stores the manifest, then the row; removes the manifest again if the row cannot be written.
async fn finish(
    storage: &Storage,
    db: &Db,
    manifest: &Manifest,
    owner: Owner,
    sealed: &[u8],
) -> Result<()> {
    storage.put_manifest(manifest.root, manifest.to_json()).await?;
    let row = NewTrack {
        manifest,
        artist_node: owner.node,
        uploaded_by: owner.address,
        sealed_secret: sealed,
    };
    if let Err(e) = db.insert_track(&row).await {
        if let Err(cleanup) = storage.delete_manifest(manifest.root).await {
            warn!(target: "beatstream::studio", root = %manifest.root, error = %cleanup, "left a manifest behind");
        }
        return Err(e);
    }
    Ok(())
}

/// Removes the chunks a failed upload wrote; a failure is logged, the upload's own error is what the client sees.
async fn remove_chunks(storage: &Storage, written: &[B256]) {
    let mut removals = futures_util::stream::iter(written.iter().copied())
        .map(|hash| async move { (hash, storage.delete_chunk(hash).await) })
        .buffer_unordered(PUTS_IN_FLIGHT);
    while let Some((hash, removed)) = removals.next().await {
        if let Err(error) = removed {
            warn!(target: "beatstream::studio", chunk = %hash, error = %error, "left a chunk of a failed upload behind");
        }
    }
}
