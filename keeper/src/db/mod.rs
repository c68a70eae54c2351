//! Everything the keeper keeps in Postgres, and the only module that speaks SQL.
//!
//! - [`journal`]: the write-ahead journal of batches, items and signed attempts; every write is fenced by the lease
//!   epoch the keeper holds.
//! - [`book`]: the settleable vouchers (the relay's book against what is settled) and the holds on them.
//! - [`lease`]: the advisory lock and lease row that make one keeper the active one.
//! - [`types`]: the journal's states as enums stored as text.
//! - [`pool`]: the connection pool ([`Db`]) and the conversion of database errors; [`health`] its ping.
//!
//! This root only declares and re-exports: the files import one another, never the root.

mod book;
mod health;
mod journal;
mod lease;
mod pool;
mod types;

pub(crate) use journal::{Attempt, Journal, Mined, NewBatch, OpenBatch};
pub(crate) use lease::{LeaseKey, LockConnection};
pub(crate) use pool::Db;
pub(crate) use types::{AttemptKind, BatchKind, BatchStatus, Outcome, SkipReason};
