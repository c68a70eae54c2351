//! Simulated BeatStream players.
//!
//! `beatstream simulate` ([`run()`]): N simulated players, each with its own wallet, session key and signed grant,
//! playing a track and signing a real voucher every second; reports sessions held, vouchers/s, ack latency and
//! errors, next to the ceiling signature recovery puts on the relay. Players sign their vouchers before the measured
//! window (so the figures are the relay's, not the generator's signing). A process can hold only as many sockets as
//! its open-file limit allows, so `--processes` splits the players over worker processes (this binary re-executed),
//! and `--spawn-relays` starts relay processes on a database seeded with `--seed-fixtures`: one command for the whole
//! benchmark (see `docs/BENCHMARKS.md`).
//!
//! [`client`]: one player over one connection (connect, hello with a grant, play, answer beats with vouchers, stop),
//! and [`client::stream`], a player that plays on and reconnects until told to stop (`beatstream dev`'s players).

pub mod audio;
pub mod ceiling;
pub mod client;
pub mod config;
mod error;
pub mod fixture;
pub mod keys;
pub mod player;
pub mod report;
mod run;

pub use ceiling::Ceiling;
pub use config::SimulateConfig;
pub use error::{Error, Result};
pub use report::{Cpu, Report, WorkerStats};
pub use run::run;
