//! Subscriptions, fed by the [`Hub`](crate::live::Hub)'s Postgres notifications.

use std::collections::VecDeque;

use async_graphql::{Context, Subscription};
use futures_util::{Stream, stream};
use tokio::sync::broadcast::{Receiver, error::RecvError};

use super::{
    api::Api,
    error::{ApiError, Result},
    types::*,
};
use crate::{
    db::{self, settlements::SettlementFilter, tips::TipFilter},
    live::Change,
};

/// The subscription root.
pub(crate) struct SubscriptionRoot;

/// The next change, treating a subscriber that fell behind the broadcast like a lost connection: reload.
async fn next_change(api: &Api, rx: &mut Receiver<Change>) -> Option<Change> {
    let received = tokio::select! {
        _ = api.shutdown.cancelled() => return None,
        received = rx.recv() => received,
    };
    match received {
        Ok(change) => Some(change),
        Err(RecvError::Lagged(_)) => Some(Change::Reload),
        Err(RecvError::Closed) => None,
    }
}

async fn payee_of(api: &Api, artist: &str) -> Result<Vec<u8>> {
    if artist.starts_with("0x") {
        return Ok(parse_address(artist)?.to_vec());
    }
    let name = artist.to_ascii_lowercase();
    let full = if name.contains('.') { name } else { format!("{name}.beatstream.eth") };
    let addr = db::artists::addr_by_name(&api.db, &full).await?;
    addr.flatten()
        .ok_or_else(|| ApiError::not_found(format!("no artist {full} with an address record")))
}

/// Settlements after `cursor` matching the filters, oldest first.
async fn settlements_after(
    api: &Api,
    payee: &Option<Vec<u8>>,
    listener: &Option<Vec<u8>>,
    cursor: &[String],
) -> Result<Vec<Settlement>> {
    let filter =
        SettlementFilter { payee: payee.clone(), listener: listener.clone(), grant_id: None };
    let list = db::settlements::list(&api.db, filter, false);
    let rows = list.fetch(&api.db, Some(cursor), None, 1000, false).await?;
    Ok(rows.nodes.into_iter().map(|(row, _)| Settlement::from(row)).collect())
}

/// The node of an artist given by ENS name or by address (its `addr` record).
async fn node_of(api: &Api, artist: &str) -> Result<Vec<u8>> {
    let row = if artist.starts_with("0x") {
        api.loader.load_one(by_addr(parse_address(artist)?.as_slice())).await?
    } else {
        let name = artist.to_ascii_lowercase();
        let full = if name.contains('.') { name } else { format!("{name}.beatstream.eth") };
        db::artists::by_name(&api.db, &full).await?
    };
    row.map(|r| r.node).ok_or_else(|| ApiError::not_found(format!("no artist {artist}")))
}

/// Up to 1,000 tips to the artist at `node` after `cursor`, oldest first, with the cursor of the last.
async fn tips_after(
    api: &Api,
    node: &[u8],
    cursor: Option<&[String]>,
    limit: usize,
    newest: bool,
) -> Result<Vec<(Tip, Vec<String>)>> {
    let list = db::tips::list(&api.db, TipFilter::ToArtist(node.to_vec()), newest);
    let rows = list.fetch(&api.db, cursor, None, limit, false).await?;
    Ok(rows.nodes.into_iter().map(|(row, key)| (Tip::from(row), key)).collect())
}

async fn session_of(api: &Api, id: &str) -> Result<Option<Session>> {
    Ok(db::sessions::by_id(&api.db, id).await?.map(Session::from))
}

#[Subscription]
impl SubscriptionRoot {
    /// Settlements as the indexer writes them, oldest first; only one artist's (ENS name or address) or one
    /// listener's when given.
    async fn settlements(
        &self,
        ctx: &Context<'_>,
        artist: Option<String>,
        listener: Option<String>,
    ) -> Result<impl Stream<Item = Settlement>> {
        let api = api(ctx).clone();
        let payee = match artist {
            Some(a) => Some(payee_of(&api, &a).await?),
            None => None,
        };
        let listener = listener.map(|l| parse_address(&l).map(|a| a.to_vec())).transpose()?;
        // Start after the newest settlement there is now.
        let newest = db::settlements::list(&api.db, SettlementFilter::default(), true)
            .fetch(&api.db, None, None, 1, false)
            .await?;
        let cursor: Vec<String> = newest
            .nodes
            .into_iter()
            .next()
            .map(|(_, key)| key)
            .unwrap_or_else(|| vec!["-1".into(), "-1".into()]);
        let rx = api.hub.subscribe();
        let state = (api, payee, listener, rx, cursor, VecDeque::<Settlement>::new());
        Ok(stream::unfold(
            state,
            |(api, payee, listener, mut rx, mut cursor, mut queue)| async move {
                loop {
                    if let Some(next) = queue.pop_front() {
                        return Some((next, (api, payee, listener, rx, cursor, queue)));
                    }
                    let change = next_change(&api, &mut rx).await?;
                    let relevant = match &change {
                        Change::Settlements(events) => events.iter().any(|e| {
                            payee.as_ref().is_none_or(|p| *p == e.payee)
                                && listener.as_ref().is_none_or(|l| *l == e.listener)
                        }),
                        Change::Reload => true,
                        Change::Earnings | Change::Vouchers | Change::Tips => false,
                    };
                    if !relevant {
                        continue;
                    }
                    // Read everything after what this subscriber has seen: catches up after a reconnect too.
                    if let Ok(fresh) = settlements_after(&api, &payee, &listener, &cursor).await {
                        if let Some(last) = fresh.last() {
                            cursor =
                                vec![last.block_number.to_string(), last.log_index.to_string()];
                        }
                        queue.extend(fresh);
                    }
                }
            },
        ))
    }

    /// Tips to an artist (ENS name or address; to its address or any of its split payees) as the indexer writes
    /// them, oldest first. Woken by the indexer's `beatstream_tips` notification and after a reconnect, it reads the
    /// artist's tips after the last one it delivered.
    async fn tip_received(
        &self,
        ctx: &Context<'_>,
        artist: String,
    ) -> Result<impl Stream<Item = Tip>> {
        let api = api(ctx).clone();
        let node = node_of(&api, &artist).await?;
        // Start after the artist's newest tip now.
        let cursor = tips_after(&api, &node, None, 1, true)
            .await?
            .into_iter()
            .next()
            .map(|(_, key)| key)
            .unwrap_or_else(|| vec!["-1".into(), "-1".into()]);
        let rx = api.hub.subscribe();
        let state = (api, node, rx, cursor, VecDeque::<Tip>::new());
        Ok(stream::unfold(state, |(api, node, mut rx, mut cursor, mut queue)| async move {
            loop {
                if let Some(next) = queue.pop_front() {
                    return Some((next, (api, node, rx, cursor, queue)));
                }
                match next_change(&api, &mut rx).await? {
                    Change::Tips | Change::Reload => {}
                    Change::Settlements(_) | Change::Earnings | Change::Vouchers => continue,
                }
                if let Ok(fresh) = tips_after(&api, &node, Some(&cursor), 1000, false).await {
                    for (tip, key) in fresh {
                        cursor = key;
                        queue.push_back(tip);
                    }
                }
            }
        }))
    }

    /// An artist's earnings (ENS name or address): now, then each time they change.
    async fn artist_earnings(
        &self,
        ctx: &Context<'_>,
        artist: String,
    ) -> Result<impl Stream<Item = Earnings>> {
        let api = api(ctx).clone();
        let payee = payee_of(&api, &artist).await?;
        let rx = api.hub.subscribe();
        let state = (api, payee, rx, None::<Earnings>);
        Ok(stream::unfold(state, |(api, payee, mut rx, last)| async move {
            let mut first = last.is_none();
            loop {
                if !first {
                    match next_change(&api, &mut rx).await? {
                        Change::Earnings | Change::Reload | Change::Vouchers => {}
                        Change::Settlements(_) | Change::Tips => continue,
                    }
                }
                first = false;
                let Ok(Some(now)) = earnings_of(&api, &payee).await else { continue };
                let changed = last.as_ref().is_none_or(|l| {
                    l.earned != now.earned
                        || l.pending != now.pending
                        || l.withdrawable != now.withdrawable
                });
                if changed {
                    return Some((now.clone(), (api, payee, rx, Some(now))));
                }
            }
        }))
    }

    /// A session live: its state now, then a new one whenever a voucher moves it (each beat the listener pays),
    /// until it closes.
    async fn session_beats(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> Result<impl Stream<Item = Session>> {
        let api = api(ctx).clone();
        if id.len() != 36 || !id.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-') {
            return Err(ApiError::bad_input("a session id is a UUID"));
        }
        if session_of(&api, &id).await?.is_none() {
            return Err(ApiError::not_found(format!("no session {id}")));
        }
        let rx = api.hub.subscribe();
        let state = (api, id, rx, None::<(i64, String, SessionStatus)>, false);
        Ok(stream::unfold(state, |(api, id, mut rx, last, done)| async move {
            if done {
                return None;
            }
            let mut first = last.is_none();
            loop {
                if !first {
                    match next_change(&api, &mut rx).await? {
                        Change::Vouchers | Change::Reload => {}
                        Change::Settlements(_) | Change::Earnings | Change::Tips => continue,
                    }
                }
                first = false;
                let Ok(Some(now)) = session_of(&api, &id).await else { continue };
                let key = (now.seconds, now.amount.raw.clone(), now.status);
                if last.as_ref() != Some(&key) {
                    let closed = now.status == SessionStatus::Closed;
                    return Some((now, (api, id, rx, Some(key), closed)));
                }
            }
        }))
    }
}
