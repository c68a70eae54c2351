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
