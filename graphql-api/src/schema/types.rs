//! The objects of the schema, each made from the database row it shows, and the reads several resolvers share.

use alloy::primitives::{Address, B256, U256};
use async_graphql::{ComplexObject, Context, Enum, SimpleObject, dataloader::DataLoader};
use beatstream_primitives::units::format_usdc;

use super::{
    api::Api,
    connection::{Page, page, page_cost},
    error::{ApiError, Result},
};
use crate::db::{
    self, ArtistRow, ByAddr, ByNode, EarningsOf, ListeningOf, Loaders, PlaySplitOf,
    SplitEarningsOf, TextsOf, TrackById, TrackStatsOf,
    splits::{RecipientEarningsRow, RecipientSplitRow, SplitRow},
    tips::{SupporterRow, TipFilter, TipRow},
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

impl From<db::TextRow> for TextRecord {
    fn from(t: db::TextRow) -> Self {
        Self { key: t.key, value: t.value }
    }
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

impl From<db::PayeeListening> for ListenerStats {
    fn from(l: db::PayeeListening) -> Self {
        Self { streams: l.streams, seconds: l.seconds, unique_listeners: l.listeners }
    }
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

impl From<db::PayeeEarnings> for Earnings {
    fn from(e: db::PayeeEarnings) -> Self {
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

pub(crate) fn loader<'a>(ctx: &Context<'a>) -> &'a DataLoader<Loaders> {
    &api(ctx).loader
}

/// The track with this id (a decimal string), through the loader.
pub(crate) async fn track_by_id(api: &Api, id: &str) -> Result<Option<Track>> {
    Ok(api.loader.load_one(TrackById(id.to_owned())).await?.map(Track::from))
}

/// The loader key of the artist whose `addr` record is `payee`.
pub(crate) fn by_addr(payee: &[u8]) -> ByAddr {
    ByAddr(payee.try_into().unwrap_or([0; 20]))
}

/// A payee's earnings now.
pub(crate) async fn earnings_of(api: &Api, payee: &[u8]) -> Result<Option<Earnings>> {
    let key = EarningsOf(payee.try_into().unwrap_or([0; 20]));
    Ok(api.loader.load_one(key).await?.map(Earnings::from))
}

/// The `limit` tracks (of one payee, or of everyone) that earned most, over all time or the last `since_hours`.
pub(crate) async fn top_tracks(
    api: &Api,
    payee: Option<Vec<u8>>,
    since_hours: Option<i32>,
    limit: i32,
) -> Result<Vec<TrackRanking>> {
    let rows = db::tracks::top(&api.db, payee, since_hours, limit).await?;
    let ids = rows.iter().map(|r| TrackById(r.track_id.clone()));
    let mut tracks = api.loader.load_many(ids).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let track = tracks.remove(&TrackById(r.track_id))?;
            Some(TrackRanking {
                track: track.into(),
                streams: r.streams,
                seconds: r.seconds,
                revenue: Amount::new(&r.revenue),
            })
        })
        .collect())
}

/// Settled volume per `interval` between two unix times (default: the last 7 days), of one payee or of everyone.
pub(crate) async fn series(
    api: &Api,
    payee: Option<Vec<u8>>,
    interval: Interval,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Vec<Bucket>> {
    let to = to.unwrap_or_else(|| beatstream_primitives::unix_now() as i64 + 3600);
    let from = from.unwrap_or(to - 7 * 86_400);
    if to - from > 400 * 86_400 {
        return Err(ApiError::bad_input("a series spans at most 400 days"));
    }
    let interval = match interval {
        Interval::Hour => db::settlements::Interval::Hour,
        Interval::Day => db::settlements::Interval::Day,
    };
    let rows = db::settlements::series(&api.db, payee, interval, from, to).await?;
    Ok(rows
        .into_iter()
        .map(|r| Bucket {
            start: r.start,
            amount: Amount::new(&r.amount),
            fees: Amount::new(&r.fees),
            settlements: r.settlements,
        })
        .collect())
}

#[ComplexObject]
impl Artist {
    /// ENS text records (avatar, description, genre, ...), by key.
    async fn texts(&self, ctx: &Context<'_>) -> Result<Vec<TextRecord>> {
        let node: [u8; 32] = self.row.node.as_slice().try_into().unwrap_or([0; 32]);
        let texts = loader(ctx).load_one(TextsOf(node)).await?.unwrap_or_default();
        Ok(texts.into_iter().map(TextRecord::from).collect())
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
        Ok(loader(ctx)
            .load_one(ListeningOf(payee))
            .await?
            .map(ListenerStats::from)
            .unwrap_or_default())
    }

    /// The artist's tracks, lowest id first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn tracks(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Track>> {
        let api = api(ctx);
        page(
            api,
            db::tracks::of_artist(&api.db, self.row.node.clone()),
            (after, before, first, last),
        )
        .await
    }

    /// The artist's most played tracks by revenue since `sinceHours` ago (default: all time).
    async fn top_tracks(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 5, validator(minimum = 1, maximum = 100))] limit: i32,
        since_hours: Option<i32>,
    ) -> Result<Vec<TrackRanking>> {
        let Some(payee) = self.row.addr.clone() else { return Ok(Vec::new()) };
        top_tracks(api(ctx), Some(payee), since_hours, limit).await
    }

    /// Settlements paid to the artist, newest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn settlements(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Settlement>> {
        let Some(payee) = self.row.addr.clone() else {
            return Err(ApiError::not_found("the artist has no address record"));
        };
        let api = api(ctx);
        let filter = db::settlements::SettlementFilter { payee: Some(payee), ..Default::default() };
        let list = db::settlements::list(&api.db, filter, true);
        page(api, list, (after, before, first, last)).await
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
        series(api(ctx), Some(payee), interval, from, to).await
    }
    /// The split history: every version of the artist's own split (`trackId` 0) and of its tracks' splits, by track
    /// then version, each with its recipients' shares and earnings and whether it is in force.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn splits(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Split>> {
        let api = api(ctx);
        let list = db::splits::of_artist(&api.db, self.row.node.clone());
        page(api, list, (after, before, first, last)).await
    }

    /// The split versions in force, by track: one per track with a split of its own, and the artist's own
    /// (`trackId` 0), which its other tracks pay.
    async fn splits_in_force(&self, ctx: &Context<'_>) -> Result<Vec<Split>> {
        let rows = db::splits::in_force_of_artist(&api(ctx).db, &self.row.node).await?;
        Ok(rows.into_iter().map(Split::from).collect())
    }

    /// Tips to the artist (to its address or to any of its split payees), newest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn tips(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Tip>> {
        let api = api(ctx);
        let list = db::tips::list(&api.db, TipFilter::ToArtist(self.row.node.clone()), true);
        page(api, list, (after, before, first, last)).await
    }

    /// Listeners ranked by what they paid the artist (settlements and tips to its address and split payees, before
    /// fees), most first; listeners who paid the same, by address, highest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn supporters(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Supporter>> {
        let api = api(ctx);
        let list = db::tips::supporters(&api.db, self.row.node.clone());
        page(api, list, (after, before, first, last)).await
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

    /// The split a play of the track pays now (the vault's `playPayee` rule): the track's own split in force, else
    /// the artist's (`trackId` 0), else none (plays pay the artist's address).
    async fn split(&self, ctx: &Context<'_>) -> Result<Option<Split>> {
        let node: [u8; 32] = self.artist_node.as_slice().try_into().unwrap_or([0; 32]);
        Ok(loader(ctx).load_one(PlaySplitOf(node, self.id.clone())).await?.map(Split::from))
    }

    /// Every version of the track's own split, oldest first (the artist's split, which applies while the track has
    /// none in force, is in the artist's `splits`).
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn split_history(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Split>> {
        let api = api(ctx);
        let list = db::splits::of_track(&api.db, self.artist_node.clone(), self.id.clone());
        page(api, list, (after, before, first, last)).await
    }

    /// Plays, seconds, distinct listeners and revenue (what listeners' vouchers paid while it played).
    async fn stats(&self, ctx: &Context<'_>) -> Result<TrackTotals> {
        let s = loader(ctx).load_one(TrackStatsOf(self.id.clone())).await?.unwrap_or_default();
        let db::TrackStats { streams, seconds, listeners: unique_listeners, revenue } = s;
        Ok(TrackTotals {
            streams,
            seconds,
            unique_listeners,
            revenue: Amount::new(if revenue.is_empty() { "0" } else { &revenue }),
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
        track_by_id(api(ctx), &self.track_key).await
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
    s.parse::<Address>().map_err(|_| ApiError::bad_input(format!("not an address: {s}")))
}

/// Parses a `0x` 32-byte hash argument.
pub(crate) fn parse_hash(s: &str) -> Result<B256> {
    s.parse::<B256>().map_err(|_| ApiError::bad_input(format!("not a 32-byte hash: {s}")))
}

impl From<db::TrackRow> for Track {
    fn from(r: db::TrackRow) -> Self {
        Self {
            id: r.id,
            title: r.title,
            duration: r.duration,
            rate_per_second: Amount::new(&r.rate),
            content_hash: hex(&r.content_hash),
            metadata_uri: r.metadata_uri,
            published: r.published,
            published_at: r.published_at,
            artist_node: r.artist_node,
        }
    }
}

impl From<db::settlements::SettlementRow> for Settlement {
    fn from(r: db::settlements::SettlementRow) -> Self {
        Self {
            block_number: r.block_number,
            block_time: r.block_time,
            tx_hash: hex(&r.tx_hash),
            log_index: r.log_index,
            grant_id: hex(&r.grant_id),
            listener: address(&r.listener),
            payee: address(&r.payee),
            amount: Amount::new(&r.amount),
            fee: Amount::new(&r.fee),
            net: Amount::new(&r.net),
            cumulative: Amount::new(&r.cumulative),
            payee_bytes: r.payee.as_slice().try_into().unwrap_or([0; 20]),
        }
    }
}

impl From<db::sessions::SessionRow> for Session {
    fn from(r: db::sessions::SessionRow) -> Self {
        use db::sessions::{Channel, SessionState};
        let status = match r.status {
            SessionState::Live => SessionStatus::Live,
            SessionState::Paused => SessionStatus::Paused,
            SessionState::Closed => SessionStatus::Closed,
        };
        Self {
            id: r.id,
            grant_id: hex(&r.grant_id),
            channel: match r.channel {
                Channel::Vault => PaymentChannel::Vault,
                Channel::Yellow => PaymentChannel::Yellow,
            },
            listener: address(&r.listener),
            payee: address(&r.payee),
            track_id: r.track_id.clone(),
            rate_per_second: Amount::new(&r.rate),
            seconds: r.seconds,
            amount: Amount::new(&r.amount),
            status,
            close_reason: r.close_reason,
            started_at: r.started_at,
            ended_at: r.ended_at,
            payee_bytes: r.payee.as_slice().try_into().unwrap_or([0; 20]),
            track_key: r.track_id,
        }
    }
}

impl From<db::listeners::DepositRow> for Deposit {
    fn from(r: db::listeners::DepositRow) -> Self {
        Self {
            block_number: r.block_number,
            block_time: r.block_time,
            tx_hash: hex(&r.tx_hash),
            listener: address(&r.listener),
            sender: address(&r.sender),
            amount: Amount::new(&r.amount),
        }
    }
}

impl From<db::listeners::WithdrawalRow> for Withdrawal {
    fn from(r: db::listeners::WithdrawalRow) -> Self {
        Self {
            block_number: r.block_number,
            block_time: r.block_time,
            tx_hash: hex(&r.tx_hash),
            listener: address(&r.listener),
            recipient: address(&r.recipient),
            amount: Amount::new(&r.amount),
        }
    }
}

impl From<db::listeners::BalanceRow> for Balance {
    fn from(r: db::listeners::BalanceRow) -> Self {
        Self {
            thaw_end: if r.thawing == "0" { None } else { r.thaw_end },
            available: Amount::new(&r.available),
            thawing: Amount::new(&r.thawing),
            deposited: Amount::new(&r.deposited),
            spent: Amount::new(&r.spent),
            withdrawn: Amount::new(&r.withdrawn),
        }
    }
}

impl From<db::listeners::GrantRow> for Grant {
    fn from(r: db::listeners::GrantRow) -> Self {
        Self {
            id: hex(&r.id),
            session_key: address(&r.session_key),
            cap: Amount::new(&r.cap),
            expires_at: r.expires_at,
            spent: Amount::new(&r.spent),
            vouched: Amount::new(&r.vouched),
            nonce: r.nonce,
            revoked: r.revoked_at.is_some(),
            revoked_at: r.revoked_at,
            revocation_effective_at: r.effective_at,
        }
    }
}

impl From<db::listeners::NonceFloorRow> for NonceFloor {
    fn from(r: db::listeners::NonceFloorRow) -> Self {
        Self { floor: r.floor, previous: r.previous, floor_from: r.floor_from }
    }
}

impl From<db::keeper::KeeperBatchRow> for KeeperTransaction {
    fn from(r: db::keeper::KeeperBatchRow) -> Self {
        Self {
            id: r.id,
            nonce: r.nonce,
            kind: r.kind,
            status: r.status,
            hash: r.confirmed_hash.map(|h| hex(&h)),
            block_number: r.confirmed_block,
            gas_used: r.gas_used,
            vouchers: r.vouchers,
            settled: r.settled,
            attempts: r.attempts,
            created_at: r.created_at,
            confirmed_at: r.confirmed_at,
        }
    }
}

impl From<db::stats::StatsRow> for Stats {
    fn from(r: db::stats::StatsRow) -> Self {
        Self {
            artists: r.artists,
            tracks: r.tracks,
            listeners: r.listeners,
            deposited: Amount::new(&r.deposited),
            settled: Amount::new(&r.settled),
            fees: Amount::new(&r.fees),
            settlements: r.settlements,
            live_sessions: r.live_sessions,
            indexed_block: r.indexed_block,
        }
    }
}

// ----- Revenue splits and tips (contracts v3, `docs/PROTOCOL.md` "Splits and tips"). -----

/// One version of a revenue split: of an artist (`trackId` 0) or of one of its tracks. Seconds streamed and tips
/// paid to the version's `payee` are shared among its recipients by their shares, whenever they settle, even after a
/// newer version or a clear.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub(crate) struct Split {
    /// The version's payee address (`splitPayee(node, trackId, version)`): what vouchers and tips paying this version
    /// name. Unique to the (artist, track, version), so a track split's figures are that track's alone.
    pub(crate) payee: String,
    /// namehash of the artist's name.
    pub(crate) node: String,
    /// The track it splits; `"0"` for the artist's own split, which applies to the artist's tracks without a split
    /// in force of their own.
    pub(crate) track_id: String,
    /// Version, counting from 1 per (artist, track).
    pub(crate) version: i64,
    /// Unix time it was set.
    pub(crate) set_at: i64,
    /// Block it was set in.
    pub(crate) set_block: i64,
    /// Unix time it was cleared (`clearSplit`), if it was; a version replaced by a newer one is not cleared.
    pub(crate) cleared_at: Option<i64>,
    /// Block it was cleared in.
    pub(crate) cleared_block: Option<i64>,
    /// Whether it is the version in force for its (artist, track): the one new plays of the track pay (for the
    /// artist's split: new plays of its tracks without a split of their own).
    pub(crate) in_force: bool,
    #[graphql(skip)]
    pub(crate) row: SplitRow,
}

impl From<SplitRow> for Split {
    fn from(row: SplitRow) -> Self {
        Self {
            payee: address(&row.split),
            node: hex(&row.node),
            track_id: row.track_id.clone(),
            version: row.version,
            set_at: row.set_at,
            set_block: row.set_block,
            cleared_at: row.cleared_at,
            cleared_block: row.cleared_block,
            in_force: row.in_force,
            row,
        }
    }
}

#[ComplexObject]
impl Split {
    /// The recipients in `SplitSet` order, each with its share and what this version paid it so far.
    async fn recipients(&self, ctx: &Context<'_>) -> Result<Vec<SplitRecipient>> {
        let key = SplitEarningsOf(self.row.split.as_slice().try_into().unwrap_or([0; 20]));
        let earnings = loader(ctx).load_one(key).await?.unwrap_or_default();
        Ok(self
            .row
            .recipients
            .iter()
            .zip(&self.row.shares)
            .map(|(recipient, share)| {
                let paid = earnings.iter().find(|e| &e.recipient == recipient);
                SplitRecipient::new(recipient, *share, paid)
            })
            .collect())
    }

    /// The artist.
    async fn artist(&self, ctx: &Context<'_>) -> Result<Option<Artist>> {
        let node: [u8; 32] = self.row.node.as_slice().try_into().unwrap_or([0; 32]);
        Ok(loader(ctx).load_one(ByNode(node)).await?.map(Artist::from))
    }

    /// The track it splits (none for the artist's own split).
    async fn track(&self, ctx: &Context<'_>) -> Result<Option<Track>> {
        if self.track_id == "0" {
            return Ok(None);
        }
        track_by_id(api(ctx), &self.track_id).await
    }
}

/// A recipient of a split version: its share, and what the version paid it (settlements and tips, after the fee).
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct SplitRecipient {
    /// The recipient's address.
    pub(crate) address: String,
    /// Its share in basis points (the shares of a version sum to 10,000).
    pub(crate) share: i32,
    /// Paid to it by this version, ever: its parts (`SplitPaid`) of settlements and of tips. For a track split these
    /// are that track's earnings; for the artist's split (`trackId` 0), those of the artist's tracks without a split
    /// of their own, and of tips to the split.
    pub(crate) earned: Amount,
    /// The part of `earned` that came from tips.
    pub(crate) from_tips: Amount,
    /// Payments (`SplitPaid` events) that paid it.
    pub(crate) payments: i64,
}

impl SplitRecipient {
    fn new(recipient: &[u8], share: i32, paid: Option<&RecipientEarningsRow>) -> Self {
        Self {
            address: address(recipient),
            share,
            earned: Amount::new(paid.map_or("0", |e| e.earned.as_str())),
            from_tips: Amount::new(paid.map_or("0", |e| e.from_tips.as_str())),
            payments: paid.map_or(0, |e| e.payments),
        }
    }
}

/// What one address earned from one split version it is a recipient of.
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct SplitEarnings {
    /// The split version.
    pub(crate) split: Split,
    /// The recipient, its share and what the version paid it.
    pub(crate) recipient: SplitRecipient,
}

impl From<RecipientSplitRow> for SplitEarnings {
    fn from(r: RecipientSplitRow) -> Self {
        let share = r
            .split
            .recipients
            .iter()
            .position(|x| *x == r.earnings.recipient)
            .and_then(|i| r.split.shares.get(i).copied())
            .unwrap_or(0);
        let recipient = SplitRecipient::new(&r.earnings.recipient, share, Some(&r.earnings));
        Self { split: r.split.into(), recipient }
    }
}

/// A settled tip (`Tipped`): a one-off amount with a message from a listener to an artist's payee.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub(crate) struct Tip {
    /// Block number.
    pub(crate) block_number: i64,
    /// Unix time of the block.
    pub(crate) block_time: i64,
    /// Transaction hash.
    pub(crate) tx_hash: String,
    /// Log index in the block.
    pub(crate) log_index: i64,
    /// Grant it was paid under.
    pub(crate) grant_id: String,
    /// Its id under the grant (the player's choice), a decimal string.
    pub(crate) tip_id: String,
    /// The listener who sent it.
    pub(crate) listener: String,
    /// Whom it paid: the artist's address, or a split version's payee (then shared among its recipients).
    pub(crate) payee: String,
    /// Taken from the listener.
    pub(crate) amount: Amount,
    /// Protocol fee out of it.
    pub(crate) fee: Amount,
    /// To the payee: amount minus fee.
    pub(crate) net: Amount,
    /// The message exactly as the listener signed it, as UTF-8 text (at most 280 bytes). Never escaped, trimmed or
    /// normalised: it may hold `<script>`, quotes or any other text, and whoever shows it must escape it for where it
    /// goes (HTML, a terminal). Should the bytes not be valid UTF-8 (the relay refuses such tips, the vault never
    /// looks), invalid sequences read as U+FFFD here and `messageUtf8` is false: `messageHex` has the bytes.
    pub(crate) message: String,
    /// Whether the message's bytes are valid UTF-8 (then `message` is exactly them).
    pub(crate) message_utf8: bool,
    /// The message's bytes as signed, `0x` hex: lossless whatever they hold.
    pub(crate) message_hex: String,
    #[graphql(skip)]
    pub(crate) artist_node: Option<[u8; 32]>,
}

impl From<TipRow> for Tip {
    fn from(r: TipRow) -> Self {
        let (message, message_utf8) = match String::from_utf8(r.message.clone()) {
            Ok(text) => (text, true),
            Err(_) => (String::from_utf8_lossy(&r.message).into_owned(), false),
        };
        Self {
            block_number: r.block_number,
            block_time: r.block_time,
            tx_hash: hex(&r.tx_hash),
            log_index: r.log_index,
            grant_id: hex(&r.grant_id),
            tip_id: r.tip_id,
            listener: address(&r.listener),
            payee: address(&r.payee),
            amount: Amount::new(&r.amount),
            fee: Amount::new(&r.fee),
            net: Amount::new(&r.net),
            message,
            message_utf8,
            message_hex: hex(&r.message),
            artist_node: r.artist_node.and_then(|n| n.as_slice().try_into().ok()),
        }
    }
}

#[ComplexObject]
impl Tip {
    /// The artist tipped (through its address or one of its split payees).
    async fn artist(&self, ctx: &Context<'_>) -> Result<Option<Artist>> {
        let Some(node) = self.artist_node else { return Ok(None) };
        Ok(loader(ctx).load_one(ByNode(node)).await?.map(Artist::from))
    }
}

/// A listener and what it paid one artist: settlements and tips to the artist's address and split payees.
#[derive(Clone, Debug, SimpleObject)]
pub(crate) struct Supporter {
    /// The listener.
    pub(crate) listener: String,
    /// Settled for its streams of the artist's tracks (amounts before the fee).
    pub(crate) streamed: Amount,
    /// Its tips to the artist (amounts before the fee).
    pub(crate) tipped: Amount,
    /// `streamed` plus `tipped`: what supporters are ranked by.
    pub(crate) total: Amount,
    /// Tips it sent the artist.
    pub(crate) tips: i64,
}

impl From<SupporterRow> for Supporter {
    fn from(r: SupporterRow) -> Self {
        Self {
            listener: address(&r.listener),
            streamed: Amount::new(&r.streamed),
            tipped: Amount::new(&r.tipped),
            total: Amount::new(&r.total),
            tips: r.tips,
        }
    }
}
