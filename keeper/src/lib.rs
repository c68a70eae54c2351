//! Keeper: settles the relay's stored vouchers on-chain in batches, one active keeper at a time.
//!
//! Each step, the active keeper follows every open transaction of its Postgres journal to its end (receipt,
//! confirmation depth, reorg, drop, fee bump, nonce freed) and then, when value is due (a payee's or the book's
//! threshold, the maximum interval, a listener's withdrawal request or a closing settlement window), claims the
//! most valuable vouchers that fit the gas budget, drops what a simulation says the vault would skip, journals the
//! signed transaction and only then broadcasts it. `docs/KEEPER.md` explains the design and its operation.
//!
//! Where things are: `service.rs` (start-up and the leader loop), `step/` (one step's I/O), `policy/` (what to
//! batch, when, and at what fees, as pure functions), `db/` (all SQL: the epoch-fenced journal, the book, the
//! lease), `chain.rs` (RPC; `chain/simulation.rs` where the node does not serve `eth_simulateV1`), `leader.rs` (the
//! election), `http.rs` and `metrics.rs` (operations).

mod book;
mod chain;
pub mod config;
mod db;
mod error;
mod http;
mod leader;
mod metrics;
mod policy;
mod service;
mod signer;
mod step;

pub use config::{Config, Options, SignerArgs};
pub use error::{Error, FailPoint, Result};
pub use metrics::Metrics;
pub use service::{run, run_with_metrics};
