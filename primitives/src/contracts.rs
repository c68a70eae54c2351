//! Contract bindings, generated at compile time from the ABIs of the compiled contracts.
//!
//! `primitives/abi/*.json` are copied from forge's artifacts by `make abi` (`script/export-abi.mjs`), and
//! `make test` fails if they differ from a fresh `forge build`, so these bindings always match the contracts.

#![allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]

use alloy::sol;

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    BeatStreamVault,
    "abi/BeatStreamVault.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    BeatStreamRegistry,
    "abi/BeatStreamRegistry.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    MockUSDC,
    "abi/MockUSDC.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    ENSRegistry,
    "abi/ENSRegistry.json"
);

impl From<crate::eip712::SessionGrant> for BeatStreamVault::SessionGrant {
    fn from(g: crate::eip712::SessionGrant) -> Self {
        Self {
            listener: g.listener,
            sessionKey: g.sessionKey,
            cap: g.cap,
            expiresAt: g.expiresAt,
            nonce: g.nonce,
        }
    }
}

/// A gas limit for `settleBatch` with `items` items sent without a simulation (tests, one-off tools): enough for
/// every item to be a first settlement whose listener's wallet takes its whole 150,000-gas allowance.
///
/// Do not take a `settleBatch` gas limit from `eth_estimateGas`: a batch short of gas is cut short
/// (`BatchCutShort`) or skips a wallet check (`InsufficientGas`) rather than reverting, so the lowest gas at which
/// the call succeeds settles almost nothing. The keeper simulates with ample gas and adds a margin instead.
pub fn settle_batch_gas_limit(items: usize) -> u64 {
    100_000 + items as u64 * 300_000
}
