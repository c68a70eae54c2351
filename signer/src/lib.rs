//! The node's signing keys behind one interface, for every role that signs: the keeper's account (settlement
//! transactions) and the relay's Yellow operator wallet (co-signatures of app-session states).
//!
//! A role's key comes from exactly one backend: a hex private key, an encrypted JSON keystore and its password
//! file, or a key held in AWS KMS (`ECC_SECG_P256K1`, signing through alloy's KMS signer; the private key never
//! leaves KMS). Each service keeps its own flags; [`Choice::select`] checks that one backend was chosen, naming the
//! role's flags when none or several were, and [`Signer::load`] opens it. A KMS key is checked at load: it must
//! exist, be a secp256k1 signing key, and sign a test digest that recovers to its address, so a missing
//! permission, a wrong key or an unreachable KMS stops the service at start, not at its first signature.
//!
//! - [`Signer`]: the loaded key: its address, and hashes and transactions signed; it is an alloy `Signer` and
//!   `TxSigner` too, so code written against alloy's traits (the Yellow client's `QuorumSig::sign_with`) takes it.
//! - [`Choice`], [`Role`], [`KeySource`]: which backend a role's flags chose.
//! - [`AwsSettings`]: AWS settings given in code instead of the standard AWS environment (tests, embedders).
//!
//! Secrets are never printed: `Debug` of a [`KeySource`], an [`AwsSettings`] or a [`Signer`] shows the backend and
//! the address or KMS key id only, and errors name flags and files, never a key.

mod error;
mod kms;
mod signer;
mod source;

pub use error::{Error, Result};
pub use kms::{AwsSettings, KEY_SPEC};
pub use signer::{Backend, Signer};
pub use source::{Choice, Flag, KeySource, Role};
