//! Dataloaders: a list of N settlements asks for their N artists in one query, not N.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use sqlx::PgPool;

use super::types::{ArtistRow, ListenerStats, PayeeEarnings, TextRecord, Track, TrackStats};

/// Loads by key from Postgres; one loader per kind of lookup.
pub(crate) struct Db {
    pub(crate) pool: PgPool,
    pub(crate) chain_id: i64,
    /// Pending earnings per payee, computed at most once per [`PENDING_TTL`]: the sum runs over every unsettled
    /// voucher of the payee (tens of thousands for a popular artist) and changes every second anyway.
    pub(crate) pending: PendingCache,
}

/// Pending earnings per payee and when they were computed.
pub(crate) type PendingCache =
    Arc<std::sync::Mutex<HashMap<[u8; 20], (std::time::Instant, String)>>>;

async fn pending_sums(
    pool: &PgPool,
    chain_id: i64,
    payees: Vec<Vec<u8>>,
) -> sqlx::Result<Vec<(Vec<u8>, String)>> {
    sqlx::query_as(
        "SELECT k.payee, coalesce((
             SELECT sum(v.cumulative - coalesce(sp.cumulative, 0))
             FROM vouchers v
             LEFT JOIN settled_pairs sp ON sp.chain_id = $1 AND sp.grant_id = v.grant_id AND sp.payee = v.payee
             WHERE v.payee = k.payee AND v.cumulative > coalesce(sp.cumulative, 0)
         ), 0)::text
         FROM unnest($2::bytea[]) AS k (payee)",
    )
    .bind(chain_id)
    .bind(payees)
    .fetch_all(pool)
    .await
}

fn store_pending(cache: &PendingCache, sums: Vec<(Vec<u8>, String)>) {
    let now = std::time::Instant::now();
    let mut cache = cache.lock().expect("not poisoned");
    if cache.len() > 100_000 {
        cache.clear();
    }
    for (payee, sum) in sums {
        cache.insert(arr(&payee), (now, sum));
    }
}

/// How old a pending-earnings figure may be.
pub(crate) const PENDING_TTL: std::time::Duration = std::time::Duration::from_secs(1);

type LoadResult<K, V> = Result<HashMap<K, V>, Arc<sqlx::Error>>;

/// An artist by its ENS `addr` record (the payee address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ByAddr(pub(crate) [u8; 20]);
/// An artist by its ENS node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ByNode(pub(crate) [u8; 32]);
/// Text records of an artist's node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TextsOf(pub(crate) [u8; 32]);
/// A payee's earnings, settled and pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct EarningsOf(pub(crate) [u8; 20]);
/// A payee's listening totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct StatsOf(pub(crate) [u8; 20]);
/// A track's listening totals.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TrackStatsOf(pub(crate) String);
/// A track by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TrackById(pub(crate) String);

const ARTIST_COLUMNS: &str =
    "a.node, a.label, a.name, a.owner, a.addr, a.rate_per_second::text AS rate,
     extract(epoch FROM a.registered_at)::int8 AS registered_at, a.registered_block";

fn arr<const N: usize>(v: &[u8]) -> [u8; N] {
    v.try_into().unwrap_or([0; N])
}

impl Loader<ByAddr> for Db {
    type Value = ArtistRow;
    type Error = Arc<sqlx::Error>;

    async fn load(&self, keys: &[ByAddr]) -> LoadResult<ByAddr, ArtistRow> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.0.to_vec()).collect();
        let rows: Vec<ArtistRow> = sqlx::query_as(&format!(
            "SELECT {ARTIST_COLUMNS} FROM artists a WHERE a.chain_id = $1 AND a.addr = ANY($2)"
        ))
        .bind(self.chain_id)
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().filter_map(|r| Some((ByAddr(arr(r.addr.as_deref()?)), r))).collect())
    }
}

impl Loader<ByNode> for Db {
    type Value = ArtistRow;
    type Error = Arc<sqlx::Error>;

    async fn load(&self, keys: &[ByNode]) -> LoadResult<ByNode, ArtistRow> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.0.to_vec()).collect();
        let rows: Vec<ArtistRow> = sqlx::query_as(&format!(
            "SELECT {ARTIST_COLUMNS} FROM artists a WHERE a.chain_id = $1 AND a.node = ANY($2)"
        ))
        .bind(self.chain_id)
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (ByNode(arr(&r.node)), r)).collect())
    }
}

impl Loader<TextsOf> for Db {
    type Value = Vec<TextRecord>;
    type Error = Arc<sqlx::Error>;

    async fn load(&self, keys: &[TextsOf]) -> LoadResult<TextsOf, Vec<TextRecord>> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.0.to_vec()).collect();
        let rows: Vec<(Vec<u8>, String, String)> = sqlx::query_as(
            "SELECT node, key, value FROM artist_texts WHERE chain_id = $1 AND node = ANY($2) ORDER BY key",
        )
        .bind(self.chain_id)
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        let mut out: HashMap<TextsOf, Vec<TextRecord>> = HashMap::new();
        for (node, key, value) in rows {
            out.entry(TextsOf(arr(&node))).or_default().push(TextRecord { key, value });
        }
        Ok(out)
    }
}

impl Loader<EarningsOf> for Db {
    type Value = PayeeEarnings;
    type Error = Arc<sqlx::Error>;

    async fn load(&self, keys: &[EarningsOf]) -> LoadResult<EarningsOf, PayeeEarnings> {
        let wanted: Vec<Vec<u8>> = keys.iter().map(|k| k.0.to_vec()).collect();
        let mut rows: Vec<PayeeEarnings> = sqlx::query_as(
            "SELECT k.payee,
                    coalesce(e.earned_total, 0)::text AS earned, coalesce(e.fees_total, 0)::text AS fees,
                    coalesce(e.withdrawn_total, 0)::text AS withdrawn,
                    coalesce(e.withdrawable, 0)::text AS withdrawable, coalesce(e.settlements, 0) AS settlements,
                    '0' AS pending
             FROM unnest($2::bytea[]) AS k (payee)
             LEFT JOIN payee_earnings e ON e.chain_id = $1 AND e.payee = k.payee",
        )
        .bind(self.chain_id)
        .bind(wanted)
        .fetch_all(&self.pool)
        .await?;
        // Pending: what stored vouchers promise above what is settled, per payee. A payee seen before is answered from
        // the cache at once and, when the figure is older than the TTL, refreshed in the background (one refresh per
        // payee at a time); only a payee never seen is computed while the request waits.
        let now = std::time::Instant::now();
        let (missing, stale) = {
            let mut cache = self.pending.lock().expect("not poisoned");
            let mut missing = Vec::new();
            let mut stale = Vec::new();
            for k in keys {
                match cache.get_mut(&k.0) {
                    None => missing.push(k.0.to_vec()),
                    Some((at, _)) if now.duration_since(*at) > PENDING_TTL => {
                        // Mark it fresh now so concurrent requests do not refresh it too.
                        *at = now;
                        stale.push(k.0.to_vec());
                    }
                    Some(_) => {}
                }
            }
            (missing, stale)
        };
        if !stale.is_empty() {
            let (pool, chain_id, cache) = (self.pool.clone(), self.chain_id, self.pending.clone());
            tokio::spawn(async move {
                if let Ok(sums) = pending_sums(&pool, chain_id, stale).await {
                    store_pending(&cache, sums);
                }
            });
        }
        if !missing.is_empty() {
            let sums = pending_sums(&self.pool, self.chain_id, missing).await?;
            store_pending(&self.pending, sums);
        }
        let cache = self.pending.lock().expect("not poisoned");
        for row in &mut rows {
            if let Some((_, sum)) = cache.get(&arr::<20>(&row.payee)) {
                row.pending = sum.clone();
            }
        }
        Ok(rows.into_iter().map(|r| (EarningsOf(arr(&r.payee)), r)).collect())
    }
}

impl Loader<StatsOf> for Db {
    type Value = ListenerStats;
    type Error = Arc<sqlx::Error>;

    async fn load(&self, keys: &[StatsOf]) -> LoadResult<StatsOf, ListenerStats> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.0.to_vec()).collect();
        let rows: Vec<(Vec<u8>, i64, i64, i64)> = sqlx::query_as(
            "SELECT payee, streams, seconds, listeners FROM payee_listening WHERE payee = ANY($1)",
        )
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(p, streams, seconds, listeners)| {
                (StatsOf(arr(&p)), ListenerStats { streams, seconds, unique_listeners: listeners })
            })
            .collect())
    }
}

impl Loader<TrackStatsOf> for Db {
    type Value = TrackStats;
    type Error = Arc<sqlx::Error>;

    async fn load(&self, keys: &[TrackStatsOf]) -> LoadResult<TrackStatsOf, TrackStats> {
        let keys: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows: Vec<(String, i64, i64, i64, String)> = sqlx::query_as(
            "SELECT track_id::text, streams, seconds, listeners, amount::text
             FROM track_listening WHERE track_id = ANY($1::text[]::numeric[])",
        )
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, streams, seconds, listeners, revenue)| {
                (
                    TrackStatsOf(id),
                    TrackStats { streams, seconds, unique_listeners: listeners, revenue },
                )
            })
            .collect())
    }
}

impl Loader<TrackById> for Db {
    type Value = Track;
    type Error = Arc<sqlx::Error>;

    async fn load(&self, keys: &[TrackById]) -> LoadResult<TrackById, Track> {
        let keys: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let list = super::query::track_list(self.chain_id, Vec::new());
        let rows = sqlx::query(&format!(
            "SELECT {} FROM {} WHERE t.chain_id = $1 AND t.track_id = ANY($2::text[]::numeric[])",
            list.select, list.from
        ))
        .bind(self.chain_id)
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::new();
        for row in &rows {
            if let Ok((track, _)) = super::query::track_node(row) {
                out.insert(TrackById(track.id.clone()), track);
            }
        }
        Ok(out)
    }
}
