//! Types shared by every BeatStream service: contract bindings, the EIP-712 grant and voucher
//! types, USDC units, the deployment file, and the Postgres pool and migration helpers.
//!
//! Services never import one another; whatever two of them must agree on lives here.

pub mod contracts;
pub mod db;
pub mod deployment;
pub mod eip712;
pub mod error;
pub mod registration;
pub mod units;

pub use deployment::{Contracts, Deployment};
pub use eip712::{SessionGrant, VoucherDomain};
pub use error::{Error, Result};
pub use registration::register_artist;
