//! The query root and the `Listener` object: arguments checked, then read through [`crate::db`].

use async_graphql::{Context, Enum, InputObject, Object};

use super::{
    api::Api,
    connection::{Page, Window, page, page_cost},
    error::{ApiError, Result},
    types::*,
};
use crate::db::{self, sessions::SessionFilter, settlements::SettlementFilter, tips::TipFilter};

/// Order of event lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Enum)]
pub(crate) enum EventOrder {
    /// Newest first (by block, then log index).
    #[default]
    Newest,
    /// Oldest first.
    Oldest,
}

/// Order of artist lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Enum)]
pub(crate) enum ArtistOrder {
    /// Alphabetical by name.
    #[default]
    Name,
    /// Most recently registered first.
    Newest,
}

/// Filter of `settlements`.
#[derive(Clone, Debug, Default, InputObject)]
pub(crate) struct SettlementWhere {
    /// Paid by this listener.
    pub(crate) listener: Option<String>,
    /// Paid to this payee address.
    pub(crate) payee: Option<String>,
    /// Under this grant.
    pub(crate) grant_id: Option<String>,
}

/// Filter of `sessions`.
#[derive(Clone, Debug, Default, InputObject)]
pub(crate) struct SessionWhere {
    /// Of this listener.
    pub(crate) listener: Option<String>,
    /// Paying this payee address.
    pub(crate) payee: Option<String>,
    /// Of this track.
    pub(crate) track_id: Option<String>,
    /// Only sessions not closed yet.
    #[graphql(default)]
    pub(crate) live: bool,
}

/// The query root. Everything is read-only.
pub(crate) struct QueryRoot;

#[Object]
impl QueryRoot {
    /// An artist by ENS name (`alice.beatstream.eth` or `alice`) or by address (its `addr` record).
    async fn artist(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
        address: Option<String>,
    ) -> Result<Option<Artist>> {
        let api = api(ctx);
        match (name, address) {
            (Some(name), None) => {
                let name = name.to_ascii_lowercase();
                let full = if name.contains('.') { name } else { format!("{name}.beatstream.eth") };
                Ok(db::artists::by_name(&api.db, &full).await?.map(Artist::from))
            }
            (None, Some(address)) => {
                let addr = parse_address(&address)?;
                Ok(api.loader.load_one(by_addr(addr.as_slice())).await?.map(Artist::from))
            }
            _ => Err(ApiError::bad_input("give exactly one of name and address")),
        }
    }

    /// Artists, by name or newest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn artists(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] order_by: ArtistOrder,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Artist>> {
        let api = api(ctx);
        let order = match order_by {
            ArtistOrder::Name => db::ArtistOrder::Name,
            ArtistOrder::Newest => db::ArtistOrder::Newest,
        };
        page(api, db::artists::list(&api.db, order), (after, before, first, last)).await
    }

    /// A track by id.
    async fn track(&self, ctx: &Context<'_>, id: String) -> Result<Option<Track>> {
        if id.is_empty() || !id.bytes().all(|c| c.is_ascii_digit()) || id.len() > 78 {
            return Err(ApiError::bad_input("a track id is a decimal number"));
        }
        track_by_id(api(ctx), &id).await
    }

    /// A listener's account, grants and spending.
    async fn listener(&self, _ctx: &Context<'_>, address: String) -> Result<Listener> {
        Ok(Listener { address: parse_address(&address)?.to_vec() })
    }

    /// A session by id.
    async fn session(&self, ctx: &Context<'_>, id: String) -> Result<Option<Session>> {
        if id.len() != 36 || !id.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-') {
            return Err(ApiError::bad_input("a session id is a UUID"));
        }
        Ok(db::sessions::by_id(&api(ctx).db, &id).await?.map(Session::from))
    }

    /// Sessions, newest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] r#where: SessionWhere,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Session>> {
        let mut filter = SessionFilter { live: r#where.live, ..Default::default() };
        if let Some(l) = r#where.listener {
            filter.listener = Some(parse_address(&l)?.to_vec());
        }
        if let Some(p) = r#where.payee {
            filter.payee = Some(parse_address(&p)?.to_vec());
        }
        if let Some(t) = r#where.track_id {
            if t.is_empty() || t.len() > 78 || !t.bytes().all(|c| c.is_ascii_digit()) {
                return Err(ApiError::bad_input("a track id is a decimal number"));
            }
            filter.track_id = Some(t);
        }
        page(api(ctx), db::sessions::list(filter), (after, before, first, last)).await
    }

    /// On-chain settlements.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn settlements(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] r#where: SettlementWhere,
        #[graphql(default)] order_by: EventOrder,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Settlement>> {
        let mut filter = SettlementFilter::default();
        if let Some(l) = r#where.listener {
            filter.listener = Some(parse_address(&l)?.to_vec());
        }
        if let Some(p) = r#where.payee {
            filter.payee = Some(parse_address(&p)?.to_vec());
        }
        if let Some(g) = r#where.grant_id {
            filter.grant_id = Some(parse_hash(&g)?.to_vec());
        }
        let api = api(ctx);
        let list = db::settlements::list(&api.db, filter, order_by == EventOrder::Newest);
        page(api, list, (after, before, first, last)).await
    }

    /// Deposits, newest first, optionally of one listener.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn deposits(
        &self,
        ctx: &Context<'_>,
        listener: Option<String>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Deposit>> {
        deposits(api(ctx), listener, (after, before, first, last)).await
    }

    /// Completed listener withdrawals, newest first, optionally of one listener.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn withdrawals(
        &self,
        ctx: &Context<'_>,
        listener: Option<String>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Withdrawal>> {
        withdrawals(api(ctx), listener, (after, before, first, last)).await
    }

    /// The keeper's settlement transactions, newest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn keeper_transactions(
        &self,
        ctx: &Context<'_>,
        status: Option<String>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<KeeperTransaction>> {
        let api = api(ctx);
        page(api, db::keeper::list(&api.db, status), (after, before, first, last)).await
    }

    /// What an address earned from each split version it is a recipient of (it may be in several), newest version
    /// first. A track split's payee is unique to the track, so its figures are per track; the artist's split
    /// (`trackId` 0) covers the artist's tracks without a split of their own.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn split_earnings(
        &self,
        ctx: &Context<'_>,
        recipient: String,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<SplitEarnings>> {
        let recipient = parse_address(&recipient)?.to_vec();
        split_earnings(api(ctx), recipient, (after, before, first, last)).await
    }

    /// Global totals.
    async fn stats(&self, ctx: &Context<'_>) -> Result<Stats> {
        Ok(db::stats::totals(&api(ctx).db).await?.into())
    }

    /// Settled volume of everyone per hour or day between two unix times (default: the last 7 days).
    async fn series(
        &self,
        ctx: &Context<'_>,
        interval: Interval,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<Bucket>> {
        series(api(ctx), None, interval, from, to).await
    }

    /// Artists who earned most in the last `hours` (default 24).
    async fn top_artists(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 24, validator(minimum = 1, maximum = 8784))] hours: i32,
        #[graphql(default = 10, validator(minimum = 1, maximum = 100))] limit: i32,
    ) -> Result<Vec<ArtistRanking>> {
        let api = api(ctx);
        let rows = db::settlements::top_payees(&api.db, hours, limit).await?;
        let mut artists = api.loader.load_many(rows.iter().map(|r| by_addr(&r.payee))).await?;
        Ok(rows
            .into_iter()
            .map(|r| ArtistRanking {
                artist: artists.remove(&by_addr(&r.payee)).map(Artist::from),
                payee: address(&r.payee),
                earned: Amount::new(&r.earned),
                settlements: r.settlements,
            })
            .collect())
    }

    /// Tracks that earned most in the last `hours` (default 24).
    async fn top_tracks(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 24, validator(minimum = 1, maximum = 8784))] hours: i32,
        #[graphql(default = 10, validator(minimum = 1, maximum = 100))] limit: i32,
    ) -> Result<Vec<TrackRanking>> {
        top_tracks(api(ctx), None, Some(hours), limit).await
    }
}

async fn deposits(api: &Api, listener: Option<String>, window: Window) -> Result<Page<Deposit>> {
    let listener = listener.map(|l| parse_address(&l).map(|a| a.to_vec())).transpose()?;
    page(api, db::listeners::deposits(&api.db, listener), window).await
}

async fn split_earnings(
    api: &Api,
    recipient: Vec<u8>,
    window: Window,
) -> Result<Page<SplitEarnings>> {
    page(api, db::splits::earnings_of_recipient(&api.db, recipient), window).await
}

async fn withdrawals(
    api: &Api,
    listener: Option<String>,
    window: Window,
) -> Result<Page<Withdrawal>> {
    let listener = listener.map(|l| parse_address(&l).map(|a| a.to_vec())).transpose()?;
    page(api, db::listeners::withdrawals(&api.db, listener), window).await
}

/// A listener (any address; the fields are empty for one that never used the vault).
pub(crate) struct Listener {
    address: Vec<u8>,
}

#[Object]
impl Listener {
    /// The address.
    async fn address(&self) -> String {
        address(&self.address)
    }

    /// Vault balance, thawing withdrawal and lifetime totals.
    async fn balance(&self, ctx: &Context<'_>) -> Result<Option<Balance>> {
        Ok(db::listeners::balance(&api(ctx).db, &self.address).await?.map(Balance::from))
    }

    /// Grants presented to a relay, newest expiry first (at most 100), each with its revocation if any.
    async fn grants(&self, ctx: &Context<'_>) -> Result<Vec<Grant>> {
        let grants = db::listeners::grants(&api(ctx).db, &self.address).await?;
        Ok(grants.into_iter().map(Grant::from).collect())
    }

    /// The listener's nonce floor, if it ever raised one.
    async fn nonce_floor(&self, ctx: &Context<'_>) -> Result<Option<NonceFloor>> {
        Ok(db::listeners::nonce_floor(&api(ctx).db, &self.address).await?.map(NonceFloor::from))
    }

    /// What the listener paid each artist: settled on-chain and promised by vouchers, most first.
    async fn spend_per_artist(&self, ctx: &Context<'_>) -> Result<Vec<ArtistSpend>> {
        let api = api(ctx);
        let rows = db::listeners::spend_per_payee(&api.db, &self.address).await?;
        let mut artists = api.loader.load_many(rows.iter().map(|r| by_addr(&r.payee))).await?;
        Ok(rows
            .into_iter()
            .map(|r| ArtistSpend {
                artist: artists.remove(&by_addr(&r.payee)).map(Artist::from),
                payee: address(&r.payee),
                settled: Amount::new(&r.settled),
                vouched: Amount::new(&r.vouched),
            })
            .collect())
    }

    /// The listener's sessions, newest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Session>> {
        let filter = SessionFilter { listener: Some(self.address.clone()), ..Default::default() };
        page(api(ctx), db::sessions::list(filter), (after, before, first, last)).await
    }

    /// Settlements the listener paid, newest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn settlements(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Settlement>> {
        let api = api(ctx);
        let filter =
            SettlementFilter { listener: Some(self.address.clone()), ..Default::default() };
        page(api, db::settlements::list(&api.db, filter, true), (after, before, first, last)).await
    }

    /// The listener's deposits, newest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn deposits(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Deposit>> {
        deposits(api(ctx), Some(address(&self.address)), (after, before, first, last)).await
    }

    /// The listener's completed withdrawals, newest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn withdrawals(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Withdrawal>> {
        withdrawals(api(ctx), Some(address(&self.address)), (after, before, first, last)).await
    }

    /// Tips the listener sent, newest first.
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
        let list = db::tips::list(&api.db, TipFilter::From(self.address.clone()), true);
        page(api, list, (after, before, first, last)).await
    }

    /// What this address earned as a recipient of splits, per split version (as the root `splitEarnings`).
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn split_earnings(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<SplitEarnings>> {
        split_earnings(api(ctx), self.address.clone(), (after, before, first, last)).await
    }
}
