//! The book as the keeper sees it: a settleable voucher, and an unsettled tip, with everything needed to settle it.
//! What to do with the book (whether to settle now, what goes in a batch, in what order) is `policy::batch`; where
//! it comes from is `db::book`.

use alloy::primitives::{Address, B256, Bytes, U256};
use beatstream_primitives::contracts::BeatStreamVault::SessionGrant;

/// A voucher whose cumulative is above what is settled, with everything needed to settle it.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub(crate) grant_id: B256,
    pub(crate) grant: SessionGrant,
    pub(crate) grant_signature: Bytes,
    /// The indexer has seen the grant registered in the vault: its signature need not be sent again.
    pub(crate) registered: bool,
    pub(crate) payee: Address,
    pub(crate) cumulative: U256,
    pub(crate) signature: Bytes,
    /// What settling it should pay: cumulative minus what is settled.
    pub(crate) value: U256,
    /// Unix time the relay stored the voucher.
    pub(crate) voucher_at: f64,
    /// The listener asked to withdraw, or the grant's settlement window is closing.
    pub(crate) urgent: bool,
    /// The listener is a contract (a smart wallet), so the vault checks the grant with ERC-1271 until the grant is
    /// registered. Looked up only for unregistered grants about to be batched; false until then.
    pub(crate) wallet: bool,
    /// The payee is a split payee of this many recipients (the indexer's `splits`), 0 for a plain payee: the vault
    /// credits each recipient in the item and wants gas for them left before it.
    pub(crate) split_size: u32,
}

impl Candidate {
    /// Whether the vault may run a wallet check for this item: its grant is not registered and the listener is a
    /// contract. Every such item counts, not only the grant's first: if the first one's check fails, the next item
    /// of the grant is checked again.
    pub(crate) fn needs_wallet_check(&self) -> bool {
        self.wallet && !self.registered
    }
}

/// A tip the relay acked that the vault has not settled, with everything needed to settle it.
#[derive(Clone, Debug)]
pub(crate) struct Tip {
    pub(crate) grant_id: B256,
    pub(crate) grant: SessionGrant,
    pub(crate) grant_signature: Bytes,
    /// The indexer has seen the grant registered in the vault: its signature need not be sent again.
    pub(crate) registered: bool,
    pub(crate) payee: Address,
    pub(crate) tip_id: U256,
    pub(crate) amount: U256,
    /// The message as the listener signed it (UTF-8, at most 280 bytes as the relay stored it).
    pub(crate) message: String,
    pub(crate) signature: Bytes,
    /// Unix time the relay stored the tip.
    pub(crate) tipped_at: f64,
    /// The listener asked to withdraw, or the grant's settlement window is closing.
    pub(crate) urgent: bool,
    /// The listener is a contract whose grant the vault checks with ERC-1271 (see [`Candidate::wallet`]).
    pub(crate) wallet: bool,
    /// The payee is a split payee of this many recipients, 0 for a plain payee.
    pub(crate) split_size: u32,
}

impl Tip {
    /// Whether the vault may run a wallet check for this tip (see [`Candidate::needs_wallet_check`]).
    pub(crate) fn needs_wallet_check(&self) -> bool {
        self.wallet && !self.registered
    }
}
