//! What the studio asks the chain: its id at start, ERC-1271 signatures of contract accounts, and who manages an
//! artist name right now. The chain is the source of truth for both; nothing here is cached.

use alloy::{
    eips::BlockId,
    primitives::{Address, B256, Bytes, FixedBytes, U256, keccak256},
    providers::{DynProvider, Provider},
    sol,
    transports::{RpcError, TransportErrorKind},
};
use beatstream_primitives::{Deployment, contracts::BeatStreamRegistry, rpc::RpcArgs};

use crate::{Error, Result};

sol! {
    #[sol(rpc)]
    interface IERC1271 {
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4 magicValue);
    }
}

/// ERC-1271's magic value: `isValidSignature.selector`.
const ERC1271_MAGIC: FixedBytes<4> = FixedBytes([0x16, 0x26, 0xba, 0x7e]);

/// Who may act for an artist name, as the registry's `onlyNodeManager` decides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Management {
    /// The account holds the name token, or its holder approved the account (for the token or for all its tokens).
    Manager,
    /// Someone else holds the name token and has not approved the account.
    Other,
    /// No artist has the name: no token was minted for it.
    Unregistered,
}

/// The deployment's chain through `beatstream_primitives::rpc` (retries, failover, TLS).
#[derive(Clone, Debug)]
pub(crate) struct Chain {
    provider: DynProvider,
    chain_id: u64,
    registry: Address,
    root_node: B256,
}

impl Chain {
    /// A provider over `rpc` for `deployment`; nothing is connected yet.
    pub(crate) fn new(rpc: &RpcArgs, deployment: &Deployment) -> Result<Self> {
        let provider =
            beatstream_primitives::rpc::provider(rpc).map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self {
            provider,
            chain_id: deployment.chain_id,
            registry: deployment.contracts.registry,
            root_node: deployment.root_node,
        })
    }

    /// Fails unless the endpoint serves the deployment's chain.
    pub(crate) async fn check_chain_id(&self) -> Result<()> {
        let actual = self.provider.get_chain_id().await.map_err(rpc)?;
        if actual != self.chain_id {
            return Err(Error::WrongChain { expected: self.chain_id, actual });
        }
        Ok(())
    }

    /// Whether `account` has code: a contract, or an EIP-7702 account delegating to one.
    pub(crate) async fn has_code(&self, account: Address) -> Result<bool> {
        Ok(!self.provider.get_code_at(account).await.map_err(rpc)?.is_empty())
    }

    /// Whether the contract at `account` accepts `signature` for `hash` under ERC-1271 (returns `0x1626ba7e`). A
    /// revert or any other answer is `false`; an endpoint that cannot be reached is [`Error::Rpc`].
    pub(crate) async fn is_valid_signature(
        &self,
        account: Address,
        hash: B256,
        signature: &[u8],
    ) -> Result<bool> {
        let wallet = IERC1271::new(account, &self.provider);
        match wallet.isValidSignature(hash, Bytes::copy_from_slice(signature)).call().await {
            Ok(magic) => Ok(magic == ERC1271_MAGIC),
            // The node answered: the call reverted or returned something that is not a bytes4.
            Err(alloy::contract::Error::TransportError(RpcError::ErrorResp(_)))
            | Err(alloy::contract::Error::AbiError(_))
            | Err(alloy::contract::Error::ZeroData(..)) => Ok(false),
            Err(e) => Err(Error::Rpc(e.to_string())),
        }
    }

    /// Whether `account` manages `<label>.beatstream.eth` at the latest block: the registry's `_checkManager`, read
    /// through views at one block. The name token's holder (`managerOf(node)`, zero for no artist) manages it, and
    /// so does an account the holder approved, for that token (`getApproved`) or all its tokens
    /// (`isApprovedForAll`), as OpenZeppelin's `_isAuthorized` allows.
    pub(crate) async fn management(&self, label: &str, account: Address) -> Result<Management> {
        let node = self.node(label);
        let token = U256::from_be_bytes(node.0);
        let registry = BeatStreamRegistry::new(self.registry, &self.provider);
        // One block for every read, so a transfer between them cannot mix two holders' answers.
        let block = BlockId::number(self.provider.get_block_number().await.map_err(rpc)?);
        let holder = registry.managerOf(node).block(block).call().await.map_err(contract)?;
        if holder == Address::ZERO {
            return Ok(Management::Unregistered);
        }
        if account == Address::ZERO {
            return Ok(Management::Other);
        }
        if holder == account {
            return Ok(Management::Manager);
        }
        let approved_for_all = registry.isApprovedForAll(holder, account).block(block);
        let approved = registry.getApproved(token).block(block);
        let (for_all, for_token) =
            tokio::try_join!(async { approved_for_all.call().await.map_err(contract) }, async {
                approved.call().await.map_err(contract)
            },)?;
        Ok(if for_all || for_token == account { Management::Manager } else { Management::Other })
    }

    /// `namehash(<label>.beatstream.eth)`: `keccak256(rootNode ‖ keccak256(label))`, as the registry mints it.
    pub(crate) fn node(&self, label: &str) -> B256 {
        let mut preimage = [0u8; 64];
        preimage[..32].copy_from_slice(self.root_node.as_slice());
        preimage[32..].copy_from_slice(keccak256(label.as_bytes()).as_slice());
        keccak256(preimage)
    }
}

fn rpc(e: RpcError<TransportErrorKind>) -> Error {
    Error::Rpc(e.to_string())
}

fn contract(e: alloy::contract::Error) -> Error {
    Error::Rpc(e.to_string())
}
