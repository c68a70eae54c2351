//! Types shared by every BeatStream service: contract bindings, the EIP-712 grant and voucher
//! types, USDC units, the deployment file, the Postgres pool and migration helpers, the metrics registry
//! set-up, TLS, the JSON-RPC providers and the wall clock.
//!
//! Services never import one another; whatever two of them must agree on lives here.

pub mod audio_key;
pub mod contracts;
pub mod db;
pub mod deployment;
pub mod eip712;
pub mod error;
pub mod health;
pub mod metrics;
pub mod registration;
pub mod rpc;
pub mod time;
pub mod tls;
pub mod units;

pub use deployment::{Contracts, Deployment};
pub use eip712::{SessionGrant, VoucherDomain};
pub use error::{Error, Result};
pub use metrics::MetricsRegistry;
pub use registration::register_artist;
pub use time::{unix_now, unix_now_f64};
