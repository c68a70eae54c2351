//! The whole upload path in one iterator: decode, cut, encrypt, hash; then the manifest.

use std::path::Path;

use alloy::primitives::B256;

use crate::{
    Chunker, Format, Limits, Manifest, Result, TrackSecret, chunk_key, encrypt_chunk,
    manifest::leaf,
};

/// A chunk as stored and served: encrypted, with its leaf hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredChunk {
    /// The chunk's position in the track, from 0.
    pub index: u32,
    /// Ciphertext ‖ tag.
    pub bytes: Vec<u8>,
    /// keccak256 of `bytes`.
    pub hash: B256,
}

/// Cuts a file into chunks, encrypts each under its key from `secret` and hashes it; once every chunk is out,
/// [`manifest`](Self::manifest) gives the track's manifest and root. Memory stays one chunk and the hashes.
pub struct TrackChunks<'s> {
    chunker: Chunker,
    secret: &'s TrackSecret,
    leaves: Vec<B256>,
    manifest: Option<Manifest>,
}

impl<'s> TrackChunks<'s> {
    /// Opens `path`; the checks of [`probe`](crate::probe) apply as it is read.
    pub fn open(path: &Path, limits: &Limits, secret: &'s TrackSecret) -> Result<Self> {
        Ok(Self {
            chunker: Chunker::open(path, limits)?,
            secret,
            leaves: Vec::new(),
            manifest: None,
        })
    }

    /// The format every chunk carries.
    pub fn format(&self) -> Format {
        self.chunker.format()
    }

    /// The manifest, once the iterator has returned `None` after the last chunk without an error.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }
}

impl Iterator for TrackChunks<'_> {
    type Item = Result<StoredChunk>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.chunker.next() {
            Some(Ok(chunk)) => {
                let bytes =
                    encrypt_chunk(&chunk_key(self.secret, chunk.index), chunk.index, &chunk.bytes);
                let hash = leaf(&bytes);
                self.leaves.push(hash);
                Some(Ok(StoredChunk { index: chunk.index, bytes, hash }))
            }
            Some(Err(err)) => Some(Err(err)),
            None => {
                // The chunker has info only after a clean end; the leaves are taken once.
                if let (None, Some(info)) = (&self.manifest, self.chunker.info()) {
                    match Manifest::new(&info, std::mem::take(&mut self.leaves)) {
                        Ok(manifest) => self.manifest = Some(manifest),
                        Err(err) => return Some(Err(err)),
                    }
                }
                None
            }
        }
    }
}
