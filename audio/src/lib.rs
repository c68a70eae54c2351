//! BeatStream audio: probe an uploaded file, cut it into one-second chunks a browser plays back to back, encrypt
//! each chunk under its own key and commit to the ciphertexts in the root recorded on-chain. The formats are in
//! docs/PROTOCOL.md "Audio content"; why they are so in docs/DECISIONS.md "Audio chunks".
//!
//! [`probe`] checks an upload and tells its true length; [`TrackChunks`] turns it into stored chunks and a
//! [`Manifest`]; [`chunk_key`] is what the relay releases per paid second; [`decrypt_chunk`],
//! [`Manifest::verify_chunk`] and [`decode_chunk`] are the player's side.

mod chunk;
mod crypto;
mod decode;
pub mod demo;
mod error;
mod info;
mod limits;
mod manifest;
mod opus;
mod track;
pub mod wav;

pub use chunk::{
    CHUNK_BITS_PER_SAMPLE, CHUNK_MIME_TYPE, Chunk, Chunker, Pcm, decode_chunk, encode_chunk,
};
pub use crypto::{
    CHUNK_KEY_SALT, ChunkKey, NONCE_LEN, NodeKey, SEALED_SECRET_AAD, SEALED_SECRET_LEN, TAG_LEN,
    TrackSecret, chunk_key, decrypt_chunk, encrypt_chunk, open_secret, seal_secret,
};
pub use decode::{PcmReader, probe};
pub use error::{Error, Result};
pub use info::{AudioInfo, CHUNK_SECONDS, Codec, Format};
pub use limits::{
    ByteLimit, DEFAULT_MAX_BYTES, DEFAULT_MAX_DURATION_MS, LimitedReader, LimitedWriter, Limits,
};
pub use manifest::{MANIFEST_VERSION, Manifest, chunks_hash, leaf, root};
pub use track::{StoredChunk, TrackChunks};
