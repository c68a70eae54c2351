//! Decoding logs of the three contracts into [`Event`]s.

use alloy::{
    primitives::{Address, B256, U256},
    rpc::types::Log,
    sol_types::{SolEventInterface, SolType, sol_data},
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
    /// A `Tipped` event's message exactly as the log carries it: the decoded `string` is lossy (invalid UTF-8
    /// becomes U+FFFD), and the vault never checks the bytes it is given.
    pub(crate) tip_message: Option<Vec<u8>>,
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
            Ok(kind) => {
                let tip_message = match &kind {
                    EventKind::Vault(Vault::Tipped(_)) => Some(
                        <TippedData as SolType>::abi_decode_params(data)
                            .map_err(|e| Error::Decode {
                                block: block_number,
                                log_index,
                                reason: e.to_string(),
                            })?
                            .3
                            .to_vec(),
                    ),
                    _ => None,
                };
                Ok(Some(Event { at, kind, tip_message }))
            }
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

/// The data of a `Tipped` log (`tipId`, `amount`, `fee`, `message`), with the message as the bytes it is.
type TippedData = (sol_data::Uint<256>, sol_data::Uint<256>, sol_data::Uint<256>, sol_data::Bytes);

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

#[cfg(test)]
mod tests {
    use alloy::{
        primitives::{Bytes, LogData},
        sol_types::SolEvent,
    };
    use beatstream_primitives::contracts::BeatStreamVault::Tipped;

    use super::*;

    fn at(log_index: u64, tx: u8) -> LogPosition {
        LogPosition {
            block_number: 9,
            block_hash: B256::repeat_byte(0x09),
            block_time: 1_700_000_000,
            tx_hash: B256::repeat_byte(tx),
            log_index,
        }
    }

    fn settled(log_index: u64, tx: u8, payee: Address) -> Event {
        let e = beatstream_primitives::contracts::BeatStreamVault::Settled {
            grantId: B256::repeat_byte(0x01),
            listener: Address::repeat_byte(0x02),
            payee,
            amount: U256::from(100),
            cumulative: U256::from(100),
            fee: U256::from(2),
        };
        Event {
            at: at(log_index, tx),
            kind: EventKind::Vault(Vault::Settled(e)),
            tip_message: None,
        }
    }

    fn paid(log_index: u64, tx: u8, split: Address) -> Event {
        let e = beatstream_primitives::contracts::BeatStreamVault::SplitPaid {
            split,
            amount: U256::from(98),
            parts: vec![U256::from(98)],
        };
        Event {
            at: at(log_index, tx),
            kind: EventKind::Vault(Vault::SplitPaid(e)),
            tip_message: None,
        }
    }

    /// A `SplitPaid` is mirrored only right after the event of its split payee it pays out, in its transaction.
    #[test]
    fn a_split_payment_needs_its_source_right_before_it() {
        let split = Address::repeat_byte(0x5b);
        let ok = [settled(4, 0xaa, split), paid(5, 0xaa, split)];
        assert_eq!(split_source(&ok, 1), Some((SplitSource::Settled, 4)));
        assert!(check_split_payments(&ok).is_ok());
        for bad in [
            vec![paid(5, 0xaa, split)],
            vec![settled(4, 0xaa, Address::repeat_byte(0x01)), paid(5, 0xaa, split)],
            vec![settled(4, 0xbb, split), paid(5, 0xaa, split)],
            vec![settled(3, 0xaa, split), paid(5, 0xaa, split)],
        ] {
            let i = bad.len() - 1;
            assert_eq!(split_source(&bad, i), None);
            let err = check_split_payments(&bad).unwrap_err();
            assert!(matches!(err, Error::Decode { block: 9, log_index: 5, .. }), "{err}");
        }
    }

    /// A `Tipped` message that is not UTF-8 (the vault takes any bytes) is kept byte for byte, though the decoded
    /// `string` replaces what is not UTF-8.
    #[test]
    fn a_tip_message_keeps_its_exact_bytes() -> eyre::Result<()> {
        let vault = Address::repeat_byte(0x0a);
        let sources = Sources {
            vault,
            registry: Address::repeat_byte(0x0b),
            ens: Address::repeat_byte(0x0c),
        };
        let message = b"ok \xff\xfe \xe2\x99\xa5".to_vec();
        let data = <TippedData as SolType>::abi_encode_params(&(
            U256::from(1),
            U256::from(500),
            U256::from(12),
            Bytes::from(message.clone()),
        ));
        let topics = vec![
            Tipped::SIGNATURE_HASH,
            B256::repeat_byte(0x01),
            Address::repeat_byte(0x02).into_word(),
            Address::repeat_byte(0x03).into_word(),
        ];
        let log = Log {
            inner: alloy::primitives::Log {
                address: vault,
                data: LogData::new(topics, data.into()).expect("four topics"),
            },
            block_number: Some(7),
            block_hash: Some(B256::repeat_byte(0x07)),
            transaction_hash: Some(B256::repeat_byte(0x08)),
            log_index: Some(3),
            ..Default::default()
        };
        let event = sources.decode(&log, 1_700_000_000)?.expect("a vault event");
        let EventKind::Vault(Vault::Tipped(tipped)) = &event.kind else { panic!("{event:?}") };
        assert_eq!(tipped.amount, U256::from(500));
        assert_ne!(tipped.message.as_bytes(), message.as_slice(), "alloy's string is lossy");
        assert_eq!(event.tip_message, Some(message));
        Ok(())
    }
}
