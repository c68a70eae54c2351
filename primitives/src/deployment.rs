//! The deployment file written by the forge deploy script and read by every service.

use std::path::Path;

use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Where the BeatStream contracts live on one chain.
///
/// Unknown fields are ignored so the deploy script can add entries without breaking
/// older nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// EIP-155 chain id the contracts were deployed to.
    pub chain_id: u64,
    /// Block of the first deployment transaction; indexing starts here.
    pub deployment_block: u64,
    /// namehash of the name artists are registered under (`beatstream.eth`).
    pub root_node: B256,
    /// Seconds a listener's withdrawal request thaws before it can be withdrawn.
    pub withdrawal_delay: u64,
    /// Seconds after a grant's expiry during which its vouchers can still settle.
    pub settlement_window: u64,
    /// Contract addresses.
    pub contracts: Contracts,
}

/// Addresses of the deployed contracts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contracts {
    /// ENS registry that `beatstream.eth` is registered in.
    pub ens_registry: Address,
    /// Artist and track registry (also the ENS registrar and resolver).
    pub registry: Address,
    /// USDC token the vault holds.
    pub usdc: Address,
    /// Listener deposit and settlement vault.
    pub vault: Address,
}

impl Deployment {
    /// Reads and parses a deployment file; errors name the path.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::DeploymentRead { path: path.to_owned(), source })?;
        serde_json::from_str(&text)
            .map_err(|source| Error::DeploymentParse { path: path.to_owned(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;

    const SAMPLE: &str = r#"{
        "chainId": 31337,
        "deploymentBlock": 7,
        "rootNode": "0xaaeb356b22e7c481c8833731ecb65766bad2cf7230b1b6ebed906ddd226698aa",
        "withdrawalDelay": 86400,
        "settlementWindow": 604800,
        "contracts": {
            "ensRegistry": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "registry": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
            "usdc": "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
            "vault": "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9"
        },
        "extra": "ignored"
    }"#;

    #[test]
    fn loads_camel_case_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("31337.json");
        std::fs::write(&path, SAMPLE).unwrap();
        let d = Deployment::load(&path).unwrap();
        assert_eq!(d.chain_id, 31337);
        assert_eq!(d.deployment_block, 7);
        assert_eq!(d.contracts.vault, address!("0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9"));
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        let err = Deployment::load(&missing).unwrap_err().to_string();
        assert!(err.contains("missing.json"), "{err}");

        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"chainId": 1}"#).unwrap();
        let err = Deployment::load(&bad).unwrap_err().to_string();
        assert!(err.contains("bad.json") && err.contains("deploymentBlock"), "{err}");
    }
}
