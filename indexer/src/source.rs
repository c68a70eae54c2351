//! Chain access behind a small trait, so the sync loop can be driven by a second implementation in tests.

use alloy::{
    eips::BlockNumberOrTag,
    primitives::Address,
    providers::{DynProvider, Provider},
    rpc::types::{Filter, Log},
};
use beatstream_primitives::rpc::RpcArgs;

use crate::{Error, Result, chain::BlockRef};

/// What the indexer reads from a chain.
pub trait ChainSource: Send + Sync {
    /// The chain id.
    fn chain_id(&self) -> impl Future<Output = Result<u64>> + Send;
    /// The latest block number.
    fn head(&self) -> impl Future<Output = Result<u64>> + Send;
    /// The header of block `number`, or `None` if this node does not have it (yet).
    fn header(&self, number: u64) -> impl Future<Output = Result<Option<BlockRef>>> + Send;
    /// All logs of `addresses` in blocks `[from, to]`.
    fn logs(
        &self,
        addresses: &[Address],
        from: u64,
        to: u64,
    ) -> impl Future<Output = Result<Vec<Log>>> + Send;
}

/// JSON-RPC nodes over HTTP(S) or WebSocket (`beatstream_primitives::rpc`: each request bounded by
/// `--rpc-timeout-secs`, retried after rate limits and outages, failing over between `--rpc-url`s).
#[derive(Clone, Debug)]
pub struct RpcSource {
    provider: DynProvider,
}

impl RpcSource {
    /// The endpoints of `rpc`; nothing is asked yet.
    pub fn connect(rpc: &RpcArgs) -> Result<Self> {
        let provider =
            beatstream_primitives::rpc::provider(rpc).map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self { provider })
    }

    async fn bounded<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, alloy::transports::TransportError>>,
    ) -> Result<T> {
        f.await.map_err(|e| Error::Rpc(format!("{what}: {e}")))
    }
}

impl ChainSource for RpcSource {
    async fn chain_id(&self) -> Result<u64> {
        self.bounded("eth_chainId", self.provider.get_chain_id()).await
    }

    async fn head(&self) -> Result<u64> {
        self.bounded("eth_blockNumber", self.provider.get_block_number()).await
    }

    async fn header(&self, number: u64) -> Result<Option<BlockRef>> {
        let block = self
            .bounded("eth_getBlockByNumber", async {
                self.provider.get_block_by_number(BlockNumberOrTag::Number(number)).await
            })
            .await?;
        Ok(block.map(|b| BlockRef {
            number: b.header.number,
            hash: b.header.hash,
            parent_hash: b.header.parent_hash,
            timestamp: b.header.timestamp,
        }))
    }

    async fn logs(&self, addresses: &[Address], from: u64, to: u64) -> Result<Vec<Log>> {
        let filter = Filter::new().address(addresses.to_vec()).from_block(from).to_block(to);
        self.bounded("eth_getLogs", self.provider.get_logs(&filter)).await
    }
}
