//! What the relay asks the chain: its id at start-up, and ERC-1271 grant signatures of contract listeners.

use alloy::{
    primitives::{Address, B256, Bytes, FixedBytes},
    providers::{DynProvider, Provider},
    sol,
    transports::{RpcError, TransportErrorKind},
};
use beatstream_primitives::rpc::RpcArgs;
use tokio::sync::OnceCell;

use crate::{Error, Result};

sol! {
    #[sol(rpc)]
    interface IERC1271 {
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4 magicValue);
    }
}

/// ERC-1271's magic value: `isValidSignature.selector`.
const ERC1271_MAGIC: FixedBytes<4> = FixedBytes([0x16, 0x26, 0xba, 0x7e]);

/// JSON-RPC endpoints (`beatstream_primitives::rpc`: retries, failover, TLS), set up on first use (so a relay
/// serving EOA listeners runs without one).
#[derive(Debug)]
pub struct Chain {
    rpc: RpcArgs,
    provider: OnceCell<DynProvider>,
}

impl Chain {
    /// The endpoints of `rpc` (http://, https://, ws:// or wss://); nothing is connected yet.
    pub fn new(rpc: impl Into<RpcArgs>) -> Self {
        Self { rpc: rpc.into(), provider: OnceCell::new() }
    }

    async fn provider(&self) -> Result<&DynProvider> {
        self.provider
            .get_or_try_init(|| async {
                beatstream_primitives::rpc::provider(&self.rpc)
                    .map_err(|e| Error::ChainUnavailable(e.to_string()))
            })
            .await
    }

    /// The chain id the endpoint reports.
    pub async fn chain_id(&self) -> Result<u64> {
        let provider = self.provider().await.map_err(|e| Error::Rpc(e.to_string()))?;
        provider.get_chain_id().await.map_err(|e| Error::Rpc(e.to_string()))
    }

    /// Whether `account` is a contract that accepts `sig` for `digest` under ERC-1271. An account without code, a
    /// revert or a wrong return value is `false`; an unreachable endpoint is [`Error::ChainUnavailable`].
    pub async fn is_valid_signature(
        &self,
        account: Address,
        digest: B256,
        sig: &[u8],
    ) -> Result<bool> {
        let provider = self.provider().await?;
        let code = provider.get_code_at(account).await.map_err(unavailable)?;
        if code.is_empty() {
            return Ok(false);
        }
        let wallet = IERC1271::new(account, provider);
        match wallet.isValidSignature(digest, Bytes::copy_from_slice(sig)).call().await {
            Ok(magic) => Ok(magic == ERC1271_MAGIC),
            // The node answered: the call reverted or returned something that is not a bytes4.
            Err(alloy::contract::Error::TransportError(RpcError::ErrorResp(_)))
            | Err(alloy::contract::Error::AbiError(_))
            | Err(alloy::contract::Error::ZeroData(..)) => Ok(false),
            Err(e) => Err(Error::ChainUnavailable(e.to_string())),
        }
    }
}

fn unavailable(e: RpcError<TransportErrorKind>) -> Error {
    Error::ChainUnavailable(e.to_string())
}
