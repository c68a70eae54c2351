//! The objects of the schema and the rows they come from.

use alloy::primitives::{Address, B256, U256};
use async_graphql::{ComplexObject, Context, Enum, Result, SimpleObject, dataloader::DataLoader};
use beatstream_primitives::units::format_usdc;

use super::{
    Api,
    list::{Bind, Filter, Page, page},
    loaders::{ByAddr, ByNode, Db, EarningsOf, StatsOf, TextsOf, TrackStatsOf},
};

pub(crate) fn hex(bytes: &[u8]) -> String {
    alloy::hex::encode_prefixed(bytes)
}

pub(crate) fn address(bytes: &[u8]) -> String {
    if bytes.len() == 20 { Address::from_slice(bytes).to_checksum(None) } else { hex(bytes) }
}

/// An amount of the vault's token: base units and the USDC value.
#[derive(Clone, Debug, PartialEq, Eq, SimpleObject)]
pub(crate) struct Amount {
    /// Base units (1 USDC = 1000000), as a decimal string.
    pub(crate) raw: String,
    /// The same in USDC with six decimals, e.g. "1.500000".
    pub(crate) usdc: String,
}

impl Amount {
    pub(crate) fn new(raw: &str) -> Self {
        let value: U256 = raw.parse().unwrap_or_default();
        Self { raw: value.to_string(), usdc: format_usdc(value) }
    }
}

/// An ENS text record of an artist.
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct TextRecord {
    /// Record key (`avatar`, `description`, `genre`, ...).
    pub(crate) key: String,
    /// Its value.
    pub(crate) value: String,
}

/// The `artists` row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct ArtistRow {
    pub(crate) node: Vec<u8>,
    pub(crate) label: String,
    pub(crate) name: String,
    pub(crate) owner: Vec<u8>,
    pub(crate) addr: Option<Vec<u8>>,
    pub(crate) rate: String,
    pub(crate) registered_at: i64,
    pub(crate) registered_block: i64,
}

/// A payee's earnings row (plus the pending sum of its unsettled vouchers).
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct PayeeEarnings {
    pub(crate) payee: Vec<u8>,
    pub(crate) earned: String,
    pub(crate) fees: String,
    pub(crate) withdrawn: String,
    pub(crate) withdrawable: String,
    pub(crate) settlements: i64,
    pub(crate) pending: String,
}

/// Listening totals.
#[derive(Clone, Debug, Default, SimpleObject)]
pub(crate) struct ListenerStats {
    /// Plays (sessions).
    pub(crate) streams: i64,
    /// Seconds listened.
    pub(crate) seconds: i64,
    /// Distinct listeners.
    pub(crate) unique_listeners: i64,
}

/// A track's totals.
#[derive(Clone, Debug, Default)]
pub(crate) struct TrackStats {
    pub(crate) streams: i64,
    pub(crate) seconds: i64,
    pub(crate) unique_listeners: i64,
    pub(crate) revenue: String,
}

/// An artist: `<label>.beatstream.eth`.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub(crate) struct Artist {
    /// ENS name, e.g. `alice.beatstream.eth`.
    pub(crate) name: String,
    /// The label, e.g. `alice`.
    pub(crate) label: String,
    /// namehash of the name.
    pub(crate) node: String,
    /// Holder of the artist's name token (an ERC-721 of the registry): who manages the artist. Not the name's owner
    /// in the ENS registry, which is the registry itself.
    pub(crate) owner: String,
    /// The name's `addr` record: where settlements pay.
    pub(crate) address: Option<String>,
    /// Default price per second of the artist's tracks.
    pub(crate) rate_per_second: Amount,
    /// Unix time of registration.
    pub(crate) registered_at: i64,
    /// Block of registration.
    pub(crate) registered_block: i64,
    #[graphql(skip)]
    pub(crate) row: ArtistRow,
}

impl From<ArtistRow> for Artist {
    fn from(row: ArtistRow) -> Self {
        Self {
            name: row.name.clone(),
            label: row.label.clone(),
            node: hex(&row.node),
            owner: address(&row.owner),
            address: row.addr.as_deref().map(address),
            rate_per_second: Amount::new(&row.rate),
            registered_at: row.registered_at,
            registered_block: row.registered_block,
            row,
        }
    }
}

/// Settled and pending earnings of a payee.
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct Earnings {
    /// Settled to the payee, after fees, ever.
    pub(crate) earned: Amount,
    /// Protocol fees taken from the payee's settlements.
    pub(crate) fees: Amount,
    /// Withdrawn by the payee.
    pub(crate) withdrawn: Amount,
    /// Settled and not yet withdrawn: what `withdrawEarnings` can take now.
    pub(crate) withdrawable: Amount,
    /// Owed under stored vouchers but not yet settled on-chain (before fees).
    pub(crate) pending: Amount,
    /// Settlements received.
    pub(crate) settlements: i64,
}

impl From<PayeeEarnings> for Earnings {
    fn from(e: PayeeEarnings) -> Self {
        Self {
            earned: Amount::new(&e.earned),
            fees: Amount::new(&e.fees),
            withdrawn: Amount::new(&e.withdrawn),
            withdrawable: Amount::new(&e.withdrawable),
            pending: Amount::new(&e.pending),
            settlements: e.settlements,
        }
    }
}

fn payee_key(addr: Option<&[u8]>) -> Option<[u8; 20]> {
    addr.and_then(|a| a.try_into().ok())
}

pub(crate) fn api<'a>(ctx: &Context<'a>) -> &'a Api {
    ctx.data_unchecked::<Api>()
}

pub(crate) fn loader<'a>(ctx: &Context<'a>) -> &'a DataLoader<Db> {
    &api(ctx).loader
}

/// Relay connection arguments.
pub(crate) type Window = (Option<String>, Option<String>, Option<i32>, Option<i32>);

#[ComplexObject]
impl Artist {
    /// ENS text records (avatar, description, genre, ...), by key.
    async fn texts(&self, ctx: &Context<'_>) -> Result<Vec<TextRecord>> {
        let node: [u8; 32] = self.row.node.as_slice().try_into().unwrap_or([0; 32]);
        Ok(loader(ctx).load_one(TextsOf(node)).await?.unwrap_or_default())
    }

    /// One text record.
    async fn text(&self, ctx: &Context<'_>, key: String) -> Result<Option<String>> {
        Ok(self.texts(ctx).await?.into_iter().find(|t| t.key == key).map(|t| t.value))
    }

    /// Earnings settled on-chain, withdrawable, and pending under unsettled vouchers.
    async fn earnings(&self, ctx: &Context<'_>) -> Result<Option<Earnings>> {
        let Some(payee) = payee_key(self.row.addr.as_deref()) else { return Ok(None) };
        Ok(loader(ctx).load_one(EarningsOf(payee)).await?.map(Earnings::from))
    }

    /// Plays, seconds listened and distinct listeners, over all time.
    async fn stats(&self, ctx: &Context<'_>) -> Result<ListenerStats> {
        let Some(payee) = payee_key(self.row.addr.as_deref()) else {
            return Ok(Default::default());
        };
        Ok(loader(ctx).load_one(StatsOf(payee)).await?.unwrap_or_default())
    }

    /// The artist's tracks, lowest id first.
    #[graphql(complexity = "first.or(last).unwrap_or(100) as usize * child_complexity")]
    async fn tracks(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Track>> {
        let list = super::query::track_list(
            api(ctx).chain_id,
            vec![Filter::new("t.artist_node =", Bind::Bytes(self.row.node.clone()))],
        );
        page(&api(ctx).pool, list, (after, before, first, last), super::query::track_node).await
    }

    /// The artist's most played tracks by revenue since `sinceHours` ago (default: all time).
    async fn top_tracks(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 5, validator(minimum = 1, maximum = 100))] limit: i32,
        since_hours: Option<i32>,
    ) -> Result<Vec<TrackRanking>> {
        let Some(payee) = self.row.addr.clone() else { return Ok(Vec::new()) };
        super::query::top_tracks(api(ctx), Some(payee), since_hours, limit).await
    }

    /// Settlements paid to the artist, newest first.
    #[graphql(complexity = "first.or(last).unwrap_or(100) as usize * child_complexity")]
    async fn settlements(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Settlement>> {
        let Some(payee) = self.row.addr.clone() else {
            return Err("the artist has no address record".into());
        };
        let list = super::query::settlement_list(
            api(ctx).chain_id,
            vec![Filter::new("s.payee =", Bind::Bytes(payee))],
            true,
        );
        page(&api(ctx).pool, list, (after, before, first, last), super::query::settlement_node)
            .await
    }

    /// Settled volume per hour or day between two unix times (default: the last 7 days).
    async fn series(
        &self,
        ctx: &Context<'_>,
        interval: Interval,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<Bucket>> {
        let Some(payee) = self.row.addr.clone() else { return Ok(Vec::new()) };
        super::query::series(api(ctx), Some(payee), interval, from, to).await
    }
}

/// Hourly or daily buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub(crate) enum Interval {
    /// One bucket per hour.
    Hour,
    /// One bucket per UTC day.
    Day,
}

/// Settled volume in one time bucket.
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct Bucket {
    /// Unix time the bucket starts.
    pub(crate) start: i64,
    /// Paid to payees, after fees.
    pub(crate) amount: Amount,
    /// Protocol fees.
    pub(crate) fees: Amount,
    /// Settlements.
    pub(crate) settlements: i64,
}

/// A published (or unpublished) track.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub(crate) struct Track {
    /// Track id in the registry.
    pub(crate) id: String,
    /// Title.
    pub(crate) title: String,
    /// Length in seconds.
    pub(crate) duration: i64,
    /// Price per second of this track (the artist's rate when the track has none of its own).
    pub(crate) rate_per_second: Amount,
    /// Content hash of the audio.
    pub(crate) content_hash: String,
    /// Metadata URI.
    pub(crate) metadata_uri: String,
    /// Whether it can be played.
    pub(crate) published: bool,
    /// Unix time of publication.
    pub(crate) published_at: i64,
    #[graphql(skip)]
    pub(crate) artist_node: Vec<u8>,
}

#[ComplexObject]
impl Track {
    /// The artist.
    async fn artist(&self, ctx: &Context<'_>) -> Result<Option<Artist>> {
        let node: [u8; 32] = self.artist_node.as_slice().try_into().unwrap_or([0; 32]);
        Ok(loader(ctx).load_one(ByNode(node)).await?.map(Artist::from))
    }

    /// Plays, seconds, distinct listeners and revenue (what listeners' vouchers paid while it played).
    async fn stats(&self, ctx: &Context<'_>) -> Result<TrackTotals> {
        let s = loader(ctx).load_one(TrackStatsOf(self.id.clone())).await?.unwrap_or_default();
        Ok(TrackTotals {
            streams: s.streams,
            seconds: s.seconds,
            unique_listeners: s.unique_listeners,
            revenue: Amount::new(if s.revenue.is_empty() { "0" } else { &s.revenue }),
        })
    }
}

/// A track's totals.
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct TrackTotals {
    /// Plays.
    pub(crate) streams: i64,
    /// Seconds listened.
    pub(crate) seconds: i64,
    /// Distinct listeners.
    pub(crate) unique_listeners: i64,
    /// What listeners paid for it.
    pub(crate) revenue: Amount,
}

/// A track in a ranking.
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct TrackRanking {
    /// The track.
    pub(crate) track: Track,
    /// Plays in the window.
    pub(crate) streams: i64,
    /// Seconds in the window.
    pub(crate) seconds: i64,
    /// Revenue in the window.
    pub(crate) revenue: Amount,
}

/// An artist in a ranking.
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct ArtistRanking {
    /// The artist (absent for a payee that is no registered artist).
    pub(crate) artist: Option<Artist>,
    /// The payee address.
    pub(crate) payee: String,
    /// Settled to them in the window, after fees.
    pub(crate) earned: Amount,
    /// Settlements in the window.
    pub(crate) settlements: i64,
}

/// One on-chain settlement (a `Settled` event).
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub(crate) struct Settlement {
    /// Block number.
    pub(crate) block_number: i64,
    /// Unix time of the block.
    pub(crate) block_time: i64,
    /// Transaction hash.
    pub(crate) tx_hash: String,
    /// Log index in the block.
    pub(crate) log_index: i64,
    /// Grant id.
    pub(crate) grant_id: String,
    /// Listener who paid.
    pub(crate) listener: String,
    /// Payee.
    pub(crate) payee: String,
    /// Taken from the listener.
    pub(crate) amount: Amount,
    /// Protocol fee out of it.
    pub(crate) fee: Amount,
    /// To the payee: amount minus fee.
    pub(crate) net: Amount,
    /// The voucher's cumulative, now settled for the pair.
    pub(crate) cumulative: Amount,
    #[graphql(skip)]
    pub(crate) payee_bytes: [u8; 20],
}

#[ComplexObject]
impl Settlement {
    /// The artist paid, if the payee is one.
    async fn artist(&self, ctx: &Context<'_>) -> Result<Option<Artist>> {
        Ok(loader(ctx).load_one(ByAddr(self.payee_bytes)).await?.map(Artist::from))
    }
}

/// A listener's deposit (`Deposited`).
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct Deposit {
    /// Block number.
    pub(crate) block_number: i64,
    /// Unix time of the block.
    pub(crate) block_time: i64,
    /// Transaction hash.
    pub(crate) tx_hash: String,
    /// Whose balance it credits.
    pub(crate) listener: String,
    /// Who paid it.
    pub(crate) sender: String,
    /// How much.
    pub(crate) amount: Amount,
}

/// A completed listener withdrawal (`Withdrawn`).
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct Withdrawal {
    /// Block number.
    pub(crate) block_number: i64,
    /// Unix time of the block.
    pub(crate) block_time: i64,
    /// Transaction hash.
    pub(crate) tx_hash: String,
    /// Whose balance it debits.
    pub(crate) listener: String,
    /// Where the tokens went.
    pub(crate) recipient: String,
    /// How much.
    pub(crate) amount: Amount,
}

/// A listener's vault balance.
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct Balance {
    /// Available to settle or to request for withdrawal.
    pub(crate) available: Amount,
    /// Requested for withdrawal and thawing (still settleable until withdrawn).
    pub(crate) thawing: Amount,
    /// Unix time the thawing funds become withdrawable, if any are thawing.
    pub(crate) thaw_end: Option<i64>,
    /// Deposited, ever.
    pub(crate) deposited: Amount,
    /// Paid to artists by settlements, ever.
    pub(crate) spent: Amount,
    /// Withdrawn, ever.
    pub(crate) withdrawn: Amount,
}

/// A grant a listener signed for a player's session key.
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct Grant {
    /// Grant id.
    pub(crate) id: String,
    /// The session key.
    pub(crate) session_key: String,
    /// Most it may pay in total.
    pub(crate) cap: Amount,
    /// Unix time after which its key may sign no more.
    pub(crate) expires_at: i64,
    /// Paid under it on-chain so far.
    pub(crate) spent: Amount,
    /// Promised under it by stored vouchers (settled or not).
    pub(crate) vouched: Amount,
    /// The listener's nonce for it: a nonce floor above it revokes it.
    pub(crate) nonce: String,
    /// Whether the listener revoked it, by its id or by raising its nonce floor above the grant's nonce. Relays
    /// refuse its new vouchers from then on.
    pub(crate) revoked: bool,
    /// Unix time of the revocation (the earlier one, if revoked both ways).
    pub(crate) revoked_at: Option<i64>,
    /// Unix time from which the vault refuses its vouchers too; vouchers acked before it settle until then.
    pub(crate) revocation_effective_at: Option<i64>,
}

/// A listener's nonce floor: every grant with a lower nonce is revoked ("sign out everywhere").
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct NonceFloor {
    /// The newest floor: relays refuse grants with a lower nonce now, the vault from `floorFrom`.
    pub(crate) floor: String,
    /// The floor the vault applies until `floorFrom`.
    pub(crate) previous: String,
    /// Unix time from which the vault applies `floor`.
    pub(crate) floor_from: i64,
}

/// What a listener paid one artist.
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct ArtistSpend {
    /// The payee.
    pub(crate) payee: String,
    /// The artist, if the payee is one.
    pub(crate) artist: Option<Artist>,
    /// Settled on-chain.
    pub(crate) settled: Amount,
    /// Promised by stored vouchers (settled or not).
    pub(crate) vouched: Amount,
}

/// One play of one track, live or past.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub(crate) struct Session {
    /// Session id.
    pub(crate) id: String,
    /// Grant it is paid under (for a Yellow session, its app session id).
    pub(crate) grant_id: String,
    /// How it is paid: vault vouchers or a Yellow Network app session.
    pub(crate) channel: PaymentChannel,
    /// The listener.
    pub(crate) listener: String,
    /// The payee.
    pub(crate) payee: String,
    /// Track id.
    pub(crate) track_id: String,
    /// Price per second.
    pub(crate) rate_per_second: Amount,
    /// Seconds paid (as of the relay's last record of it; live sessions move every second).
    pub(crate) seconds: i64,
    /// Paid in this session.
    pub(crate) amount: Amount,
    /// `LIVE`, `PAUSED` or `CLOSED`.
    pub(crate) status: SessionStatus,
    /// Why it closed.
    pub(crate) close_reason: Option<String>,
    /// Unix time it started.
    pub(crate) started_at: i64,
    /// Unix time it ended.
    pub(crate) ended_at: Option<i64>,
    #[graphql(skip)]
    pub(crate) payee_bytes: [u8; 20],
    #[graphql(skip)]
    pub(crate) track_key: String,
}

#[ComplexObject]
impl Session {
    /// The artist.
    async fn artist(&self, ctx: &Context<'_>) -> Result<Option<Artist>> {
        Ok(loader(ctx).load_one(ByAddr(self.payee_bytes)).await?.map(Artist::from))
    }

    /// The track.
    async fn track(&self, ctx: &Context<'_>) -> Result<Option<Track>> {
        super::query::track_by_id(api(ctx), &self.track_key).await
    }
}

/// How a session is paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub(crate) enum PaymentChannel {
    /// Signed vouchers against the listener's vault balance, settled on-chain by the keeper.
    Vault,
    /// Signed updates of a Yellow Network (Nitrolite v1) app session, co-signed and submitted to the nitronode.
    Yellow,
}

/// State of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub(crate) enum SessionStatus {
    /// Playing and paid up.
    Live,
    /// Vouchers fell behind; no audio until they catch up.
    Paused,
    /// Over.
    Closed,
}

/// A settlement transaction of the keeper.
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct KeeperTransaction {
    /// Journal id.
    pub(crate) id: i64,
    /// Nonce of the keeper account.
    pub(crate) nonce: i64,
    /// `settle` or `noop` (a nonce filled with a self-transfer).
    pub(crate) kind: String,
    /// `pending`, `broadcast`, `mined`, `confirmed`, `cancelled` or `failed`.
    pub(crate) status: String,
    /// Hash of the mined attempt.
    pub(crate) hash: Option<String>,
    /// Block it was mined in.
    pub(crate) block_number: Option<i64>,
    /// Gas it used.
    pub(crate) gas_used: Option<i64>,
    /// Vouchers it carried.
    pub(crate) vouchers: i64,
    /// Vouchers it settled.
    pub(crate) settled: Option<i64>,
    /// Signed attempts (first send and replacements).
    pub(crate) attempts: i64,
    /// Unix time it was journaled.
    pub(crate) created_at: i64,
    /// Unix time it was confirmed.
    pub(crate) confirmed_at: Option<i64>,
}

/// Global figures.
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct Stats {
    /// Registered artists.
    pub(crate) artists: i64,
    /// Published tracks.
    pub(crate) tracks: i64,
    /// Listeners with a vault account.
    pub(crate) listeners: i64,
    /// Deposited into the vault, ever.
    pub(crate) deposited: Amount,
    /// Settled to artists after fees, ever.
    pub(crate) settled: Amount,
    /// Protocol fees, ever.
    pub(crate) fees: Amount,
    /// Settlements, ever.
    pub(crate) settlements: i64,
    /// Sessions playing now.
    pub(crate) live_sessions: i64,
    /// Last block the indexer wrote.
    pub(crate) indexed_block: Option<i64>,
}

/// Parses a `0x` address argument.
pub(crate) fn parse_address(s: &str) -> Result<Address> {
    s.parse::<Address>().map_err(|_| format!("not an address: {s}").into())
}

/// Parses a `0x` 32-byte hash argument.
pub(crate) fn parse_hash(s: &str) -> Result<B256> {
    s.parse::<B256>().map_err(|_| format!("not a 32-byte hash: {s}").into())
}
