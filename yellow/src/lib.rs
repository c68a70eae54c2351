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
mod error;
pub mod keys;
pub mod methods;
mod number;
pub mod rpc;

pub use amount::{Amount, AmountError};
pub use app::{
    Allocation, AppDefinition, AppStateUpdate, Intent, Participant, QuorumSig, SigError, SignerKind,
};
pub use client::{Client, ClientConfig, Status};
pub use error::{Error, NodeError, NodeErrorKind, Result};
pub use keys::{AppSessionKeyState, KeySigError};
pub use number::U64String;
