//! Artist registration as the registry (v2) takes it: commit, wait the minimum age, reveal.
//!
//! Committing first hides the label until it is registered, so whoever watches the mempool cannot take the name
//! first. Every Rust caller (the dev demo, the test kit, the e2e test) registers through [`register_artist`].

use std::time::Duration;

use alloy::{
    eips::BlockId,
    primitives::{Address, B256, U256},
    providers::Provider,
    signers::local::PrivateKeySigner,
};

use crate::{
    Error, Result,
    contracts::BeatStreamRegistry::{
        BeatStreamRegistryErrors, BeatStreamRegistryInstance, TextRecord,
    },
};

/// How long to keep retrying a reveal that the chain still finds too new (a dev chain whose next block has the
/// same timestamp as the commit's).
const REVEAL_PATIENCE: Duration = Duration::from_secs(30);

/// Registers `<label>.beatstream.eth` for `owner`, the address `registry`'s provider sends from: commits to a
/// random secret, waits out the registry's `MIN_COMMITMENT_AGE`, then registers. Returns the artist's node.
pub async fn register_artist<P: Provider>(
    registry: &BeatStreamRegistryInstance<P>,
    owner: Address,
    label: &str,
    rate_per_second: U256,
    records: Vec<TextRecord>,
) -> Result<B256> {
    let rpc = |e: alloy::contract::Error| Error::Chain(e.to_string());
    // 32 random bytes from the system's generator: a guessable secret would let a watcher test labels against the
    // commitment.
    let secret = B256::from_slice(&PrivateKeySigner::random().to_bytes()[..]);
    let commitment =
        registry.makeCommitment(label.to_owned(), owner, secret).call().await.map_err(rpc)?;
    let min_age = registry.MIN_COMMITMENT_AGE().call().await.map_err(rpc)?;
    let committed = match registry.commit(commitment).send().await {
        Ok(pending) => {
            pending.get_receipt().await.map_err(|e| Error::Chain(e.to_string()))?.status()
        }
        // Refused, e.g. `CommitmentPending` because someone who copied the commit from the mempool got it in first:
        // the commitment stands all the same (only the owner committed to can reveal it), checked below.
        Err(_) => false,
    };
    if !committed && registry.commitments(commitment).call().await.map_err(rpc)?.is_zero() {
        return Err(Error::Chain(format!("commit for {label:?} failed")));
    }
    tokio::time::sleep(Duration::from_secs(min_age.saturating_to::<u64>())).await;

    // Tried against the pending block, whose time is the next block's: a chain that mines only on demand (anvil in
    // tests) would otherwise answer at the commit's block, too new, for as long as nothing else is sent.
    let register = registry
        .registerArtist(label.to_owned(), rate_per_second, records, secret)
        .block(BlockId::pending());
    let deadline = tokio::time::Instant::now() + REVEAL_PATIENCE;
    let node = loop {
        match register.call().await {
            Ok(node) => break node,
            // A chain that mines on demand stamps the next block with the wall clock second, which may still be
            // the commit's: wait for the next second.
            Err(e)
                if tokio::time::Instant::now() < deadline
                    && matches!(
                        e.as_decoded_interface_error::<BeatStreamRegistryErrors>(),
                        Some(BeatStreamRegistryErrors::BeatStreamRegistry_CommitmentTooNew(_))
                    ) =>
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(rpc(e)),
        }
    };
    let receipt = register
        .send()
        .await
        .map_err(rpc)?
        .get_receipt()
        .await
        .map_err(|e| Error::Chain(e.to_string()))?;
    if !receipt.status() {
        return Err(Error::Chain(format!("registerArtist for {label:?} reverted")));
    }
    Ok(node)
}
