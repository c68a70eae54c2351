//! BeatStream studio: artists sign in with Ethereum (EIP-4361) and act for the artist names they manage.
//! `docs/STUDIO.md` describes the endpoints.
//!
//! A wallet asks for a one-time nonce, signs an EIP-4361 message naming this node's domain and the deployment's
//! chain, and trades it for a bearer session; a request for an artist name is then allowed when the session's
//! address manages `<label>.beatstream.eth` on chain at that moment (holds the registry's name token or is approved
//! by its holder).
//!
//! Where things are: `studio.rs` (the state and what it does), `http.rs` ([`router`] and the [`Session`] and
//! [`Artist`] extractors), [`siwe`] (the message, parsed strictly, and its pure checks), `signature.rs` (EIP-191 and
//! ERC-1271), `chain.rs` (RPC), `token.rs` (nonces and session tokens), `db/` (all SQL), `error.rs` (the error
//! codes clients see).

mod chain;
pub mod config;
mod db;
mod error;
mod http;
mod signature;
pub mod siwe;
mod studio;
mod token;

pub use config::{Config, Options};
pub use error::{Error, Result};
pub use http::{MAX_BODY_BYTES, Session, router};
pub use studio::{Artist, IssuedNonce, SignIn, Studio};
