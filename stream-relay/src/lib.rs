//! Stream relay: the WebSocket endpoint where players present a listener's grant, play tracks and send a signed
//! cumulative voucher each second; vouchers are verified, checked against the listener's funds across every relay,
//! and stored in Postgres by group commit before they are acknowledged.
//!
//! Layers: [`protocol`] (wire frames), [`verify`] and [`chain`] (signatures), [`db`] (all SQL: reads, the guard's
//! state, the group commit's statements) and [`writer`] (group commit), [`guard`] (the pure balance guard and
//! revocation check), [`lease`] (the budgets a relay leases itself, so most commits need no read), [`conn`] (the transport-agnostic
//! protocol state machine), `ws` (axum WebSocket adapter), [`yellow`] (listeners paying through Yellow Network app
//! sessions, and the submitter that forwards their states to the node). The load generator is the `beatstream-sim`
//! crate. `docs/PROTOCOL.md` documents the wire protocol.

mod audio;
pub mod chain;
pub mod config;
pub mod conn;
pub mod db;
mod error;
pub mod guard;
pub mod lease;
pub mod metrics;
pub mod protocol;
pub mod relay;
mod service;
pub mod verify;
pub mod writer;
pub mod ws;
pub mod yellow;

pub use config::{Config, DEFAULT_LISTEN, Options, YellowConfig};
pub use error::{CLIENT_CODES, Error, Result};
pub use service::{Server, default_relay_id, run};
