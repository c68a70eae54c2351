//! Decoding logs of the three contracts into [`Event`]s.

use alloy::{
    primitives::{Address, B256, U256},
    rpc::types::Log,
    sol_types::SolEventInterface,
};
use beatstream_primitives::contracts::{
    BeatStreamRegistry::BeatStreamRegistryEvents as Registry,
    BeatStreamVault::BeatStreamVaultEvents as Vault, ENSRegistry::ENSRegistryEvents as Ens,
};

use crate::{Error, Result};

/// Where a log sits in the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LogPosition {
    pub(crate) block_number: u64,
    pub(crate) block_hash: B256,
    /// Unix seconds.
    pub(crate) block_time: u64,
    pub(crate) tx_hash: B256,
    pub(crate) log_index: u64,
}

/// One decoded log of a contract the indexer mirrors.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub(crate) at: LogPosition,
    pub(crate) kind: EventKind,
}

/// The decoded event of [`Event`].
#[derive(Clone, Debug)]
pub(crate) enum EventKind {
    Vault(Vault),
    Registry(Registry),
    Ens(Ens),
}

/// The contract addresses to decode logs of.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sources {
    pub(crate) vault: Address,
    pub(crate) registry: Address,
    pub(crate) ens: Address,
}

impl Sources {
    /// The addresses to ask `eth_getLogs` for.
    pub(crate) fn addresses(&self) -> Vec<Address> {
        vec![self.vault, self.registry, self.ens]
    }

    /// Decodes one log. Logs of other addresses, and logs of ours with an event we do not know (a topic no ABI
    /// event has), are `Ok(None)`: the caller counts them. A log whose topic is known but whose data does not decode
    /// is an error that names the log.
    pub(crate) fn decode(&self, log: &Log, block_time: u64) -> Result<Option<Event>> {
        let (Some(block_number), Some(block_hash), Some(tx_hash), Some(log_index)) =
            (log.block_number, log.block_hash, log.transaction_hash, log.log_index)
        else {
            return Err(Error::PendingLog);
        };
        let at = LogPosition { block_number, block_hash, block_time, tx_hash, log_index };
        let topics = log.topics();
        let data = &log.data().data;
        let decoded = if log.address() == self.vault {
            Vault::decode_raw_log(topics, data).map(EventKind::Vault)
        } else if log.address() == self.registry {
            Registry::decode_raw_log(topics, data).map(EventKind::Registry)
        } else if log.address() == self.ens {
            Ens::decode_raw_log(topics, data).map(EventKind::Ens)
        } else {
            return Ok(None);
        };
        match decoded {
            Ok(kind) => Ok(Some(Event { at, kind })),
            Err(alloy::sol_types::Error::UnknownSelector { .. }) => Ok(None),
            Err(e) => Err(Error::Decode { block: block_number, log_index, reason: e.to_string() }),
        }
    }
}

/// What a `SplitPaid` pays out: the event the vault emits right before it, in the same transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SplitSource {
    /// A voucher settled to the split payee.
    Settled,
    /// A tip settled to the split payee.
    Tipped,
    /// `setSplit` passing on what the split payee was paid before the split existed.
    SplitSet,
}

impl SplitSource {
    /// The name stored in `vault_split_payments.source`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Settled => "settled",
            Self::Tipped => "tipped",
            Self::SplitSet => "split_set",
        }
    }
}

/// The source of the `SplitPaid` at `events[i]` and its log index: the event right before it, which must be in the
/// same transaction, at the log index before, and name the same split payee. `None` if `events[i]` is no
/// `SplitPaid` or that event is not there.
pub(crate) fn split_source(events: &[Event], i: usize) -> Option<(SplitSource, u64)> {
    let paid = &events[i];
    let EventKind::Vault(Vault::SplitPaid(p)) = &paid.kind else { return None };
    let before = events.get(i.checked_sub(1)?)?;
    if before.at.tx_hash != paid.at.tx_hash
        || before.at.block_number != paid.at.block_number
        || before.at.log_index + 1 != paid.at.log_index
    {
        return None;
    }
    let source = match &before.kind {
        EventKind::Vault(Vault::Settled(e)) if e.payee == p.split => SplitSource::Settled,
        EventKind::Vault(Vault::Tipped(e)) if e.payee == p.split => SplitSource::Tipped,
        EventKind::Vault(Vault::SplitSet(e)) if e.split == p.split => SplitSource::SplitSet,
        _ => return None,
    };
    Some((source, before.at.log_index))
}

/// Checks that every `SplitPaid` of `events` (whole blocks, in chain order) follows its source event, as the vault
/// emits them; a batch that does not is refused rather than mirrored without knowing what was paid.
pub(crate) fn check_split_payments(events: &[Event]) -> Result<()> {
    for (i, event) in events.iter().enumerate() {
        if matches!(event.kind, EventKind::Vault(Vault::SplitPaid(_)))
            && split_source(events, i).is_none()
        {
            return Err(Error::Decode {
                block: event.at.block_number,
                log_index: event.at.log_index,
                reason: "SplitPaid does not follow a Settled, Tipped or SplitSet of its split"
                    .into(),
            });
        }
    }
    Ok(())
}

/// A U256 as the decimal string Postgres casts to NUMERIC.
pub(crate) fn dec(v: U256) -> String {
    v.to_string()
}

/// The details `TrackPublished` and `TrackUpdated` both carry.
#[derive(Clone, Debug)]
pub(crate) struct TrackDetails {
    pub(crate) track_id: U256,
    pub(crate) artist_node: B256,
    pub(crate) title: String,
    pub(crate) duration: u32,
    pub(crate) rate_per_second: U256,
    pub(crate) content_hash: B256,
    pub(crate) metadata_uri: String,
}

macro_rules! track_details_from {
    ($event:ty) => {
        impl From<$event> for TrackDetails {
            fn from(e: $event) -> Self {
                Self {
                    track_id: e.trackId,
                    artist_node: e.artistNode,
                    title: e.title,
                    duration: e.duration,
                    rate_per_second: e.ratePerSecond,
                    content_hash: e.contentHash,
                    metadata_uri: e.metadataURI,
                }
            }
        }
    };
}

track_details_from!(beatstream_primitives::contracts::BeatStreamRegistry::TrackPublished);
track_details_from!(beatstream_primitives::contracts::BeatStreamRegistry::TrackUpdated);
