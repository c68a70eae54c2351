//! BeatStream studio: artists sign in with Ethereum (EIP-4361), act for the artist names they manage and upload
//! their tracks; the node serves the stored audio.
//! `docs/STUDIO.md` describes the endpoints.
//!
//! A wallet asks for a one-time nonce, signs an EIP-4361 message naming this node's domain and the deployment's
//! chain, and trades it for a bearer session; a request for an artist name is then allowed when the session's
//! address manages `<label>.beatstream.eth` on chain at that moment (holds the registry's name token or is approved
//! by its holder).
//!
//! An artist's manager uploads an audio file for the name; the studio cuts it into encrypted one-second chunks (the
//! `beatstream-audio` crate), stores them and the manifest in an object store (a directory or S3) and records the
//! track with its secret sealed under the node's audio key. Chunks and manifests are served publicly, immutable and
//! cacheable, for players to verify against the root published on chain.
//!
//! Where things are: `studio.rs` (the state and what it does), `http.rs` ([`router`] and the [`Session`] and
//! [`Artist`] extractors), [`siwe`] (the message, parsed strictly, and its pure checks), `signature.rs` (EIP-191 and
//! ERC-1271), `chain.rs` (RPC), `token.rs` (nonces and session tokens), `upload.rs` (an upload, from body to
//! stored track), `storage.rs` (the object store and its layout), `catalog.rs` (stored tracks by root, cached),
//! `serve.rs` and `range.rs` (the public audio routes), `db/` (all SQL), `error.rs` (the error codes clients see), [`client`] (the studio's own HTTP client, as a wallet
//! uses it).

mod catalog;
mod chain;
pub mod client;
pub mod config;
mod db;
mod error;
mod http;
mod range;
mod serve;
mod signature;
pub mod siwe;
mod storage;
mod studio;
mod token;
mod upload;

pub use config::{Config, Options};
pub use error::{Error, Result};
pub use http::{MAX_BODY_BYTES, Session, router};
pub use serve::IMMUTABLE;
pub use studio::{Artist, IssuedNonce, SignIn, Studio};
pub use upload::Uploaded;
