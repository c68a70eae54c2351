//! A client for Yellow Network's Nitrolite v1 node ("nitronode"), written from the layer-3/nitrolite v1.4.1
//! sources and checked against their app-signing test vectors.
//!
//! - [`rpc`]: the `[type, requestId, method, payload, ts]` envelope.
//! - [`client`]: a reconnecting WebSocket client with request ids, timeouts and keepalive.
//! - [`methods`]: typed requests and responses for the methods a payee uses.
//! - [`app`]: app-session definitions and updates, the hashes quorum signatures sign, `0xA1`/`0xA2` signatures.
//! - [`keys`]: app session key states, the delegations behind `0xA2` signatures.
//! - [`Amount`]: exact human-unit decimal amounts, printed in the shortest form the node hashes.
//! - `double` (feature `test-utils`): an in-process node that enforces the same rules, for tests.

pub mod amount;
pub mod app;
pub mod client;
#[cfg(feature = "test-utils")]
pub mod double;
pub mod keys;
pub mod methods;
pub mod rpc;

pub use amount::{Amount, AmountError};
pub use app::{
    Allocation, AppDefinition, AppStateUpdate, Intent, Participant, QuorumSig, SigError, SignerKind,
};
pub use client::{Client, ClientConfig, Status};
pub use keys::{AppSessionKeyState, KeySigError};

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node answered with an error.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// No answer within the request timeout (the request may or may not have reached the node).
    #[error("{method}: no answer from the node in time")]
    Timeout {
        /// The method.
        method: String,
    },
    /// The connection dropped before the answer (the request may or may not have reached the node).
    #[error("connection to the node dropped")]
    Disconnected,
    /// The client was shut down.
    #[error("client closed")]
    Closed,
    /// The request could not be encoded.
    #[error("request does not encode: {0}")]
    Encode(String),
    /// The answer is not what the method returns.
    #[error("{method}: unexpected answer: {detail}")]
    Decode {
        /// The method.
        method: String,
        /// What did not fit.
        detail: String,
    },
}

impl Error {
    /// Whether the request certainly did not take effect (the node refused it).
    pub const fn is_refusal(&self) -> bool {
        matches!(self, Self::Node(_))
    }
}

/// An error answer from the node: the method and the node's message, classified where the message is known.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{method}: node error: {message}")]
pub struct NodeError {
    /// The method that failed.
    pub method: String,
    /// The node's text.
    pub message: String,
}

/// Broad classes of node errors, from the message text (the node sends text only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeErrorKind {
    /// The update's version is not the current one plus one.
    Version,
    /// Signatures do not reach the quorum, or one does not verify.
    Signature,
    /// Allocations break a rule (conservation, negative, unknown participant or asset).
    Allocation,
    /// The session or wallet is unknown, or the session is closed.
    NotFound,
    /// Not enough funds.
    Funds,
    /// Anything else.
    Other,
}

impl NodeError {
    /// An error for `method` with the node's `message`.
    pub fn new(method: impl Into<String>, message: impl Into<String>) -> Self {
        Self { method: method.into(), message: message.into() }
    }

    /// What kind of refusal this is, guessed from the message.
    pub fn kind(&self) -> NodeErrorKind {
        let m = self.message.to_ascii_lowercase();
        if m.contains("version") {
            NodeErrorKind::Version
        } else if m.contains("quorum")
            || m.contains("signature")
            || m.contains("signer")
            || m.contains("recover")
        {
            NodeErrorKind::Signature
        } else if m.contains("allocation") || m.contains("conserv") || m.contains("amount") {
            NodeErrorKind::Allocation
        } else if m.contains("not found") || m.contains("closed") || m.contains("unknown") {
            NodeErrorKind::NotFound
        } else if m.contains("insufficient") || m.contains("balance") {
            NodeErrorKind::Funds
        } else {
            NodeErrorKind::Other
        }
    }
}

/// A `u64` that travels as a decimal string (versions, nonces): JavaScript numbers cannot hold every `u64`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct U64String(pub u64);

impl fmt::Display for U64String {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for U64String {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for U64String {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(serde::de::Error::custom(format!("{s:?} is not a decimal uint64 string")));
        }
        s.parse().map(Self).map_err(serde::de::Error::custom)
    }
}
