//! Revenue splits and tips (contracts v3, `docs/PROTOCOL.md` "Splits and tips"): the objects and how rows become
//! them.

use async_graphql::{ComplexObject, Context, SimpleObject};

use super::{
    error::Result,
    types::{Amount, Artist, Track, address, api, hex, loader, track_by_id},
};
use crate::db::{
    ByNode, SplitEarningsOf,
    splits::{RecipientEarningsRow, RecipientSplitRow, SplitRow},
    tips::{SupporterRow, TipRow},
};

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
