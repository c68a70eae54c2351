//! Dataloaders: a list of N settlements asks for their N artists in one query, not N.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;

use super::{
    artists::{ArtistRow, COLUMNS as ARTIST_COLUMNS},
    pool::Db,
    splits::{self, RecipientEarningsRow, SplitRow},
    tracks::{self, TrackRow},
};

/// Loads by key from Postgres; one loader per kind of lookup.
pub(crate) struct Loaders {
    db: Db,
    /// Pending earnings per payee, computed at most once per [`PENDING_TTL`]: the sum runs over every unsettled
    /// voucher of the payee (tens of thousands for a popular artist) and changes every second anyway.
    pending: PendingCache,
}

impl Loaders {
    /// Loaders over `db`, with an empty pending-earnings cache.
    pub(crate) fn new(db: Db) -> Self {
        Self { db, pending: Default::default() }
    }
}

/// Pending earnings per payee and when they were computed.
type PendingCache = Arc<std::sync::Mutex<HashMap<[u8; 20], (std::time::Instant, String)>>>;

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

/// A payee's listening totals.
#[derive(Clone, Debug, Default)]
pub(crate) struct PayeeListening {
    pub(crate) streams: i64,
    pub(crate) seconds: i64,
    pub(crate) listeners: i64,
}

/// A track's listening totals.
#[derive(Clone, Debug, Default)]
pub(crate) struct TrackStats {
    pub(crate) streams: i64,
    pub(crate) seconds: i64,
    pub(crate) listeners: i64,
    pub(crate) revenue: String,
}

/// An ENS text record of an artist.
#[derive(Clone, Debug)]
pub(crate) struct TextRow {
    pub(crate) key: String,
    pub(crate) value: String,
}

async fn pending_sums(db: &Db, payees: Vec<Vec<u8>>) -> sqlx::Result<Vec<(Vec<u8>, String)>> {
    sqlx::query_as(
        "SELECT k.payee, coalesce((
             SELECT sum(v.cumulative - coalesce(sp.cumulative, 0))
             FROM vouchers v
             LEFT JOIN settled_pairs sp ON sp.chain_id = $1 AND sp.grant_id = v.grant_id AND sp.payee = v.payee
             WHERE v.payee = k.payee AND v.cumulative > coalesce(sp.cumulative, 0)
         ), 0)::text
         FROM unnest($2::bytea[]) AS k (payee)",
    )
    .bind(db.chain_id)
    .bind(payees)
    .fetch_all(&mut *db.reader().await?)
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

type LoadResult<K, V> = Result<HashMap<K, V>, Arc<crate::Error>>;

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
pub(crate) struct ListeningOf(pub(crate) [u8; 20]);
/// A track's listening totals.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TrackStatsOf(pub(crate) String);
/// A track by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TrackById(pub(crate) String);
/// What each recipient of a split version (by its payee address) was paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SplitEarningsOf(pub(crate) [u8; 20]);
/// The split a play of a track pays: (artist node, track id).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PlaySplitOf(pub(crate) [u8; 32], pub(crate) String);

fn arr<const N: usize>(v: &[u8]) -> [u8; N] {
    v.try_into().unwrap_or([0; N])
}

impl Loader<ByAddr> for Loaders {
    type Value = ArtistRow;
    type Error = Arc<crate::Error>;

    async fn load(&self, keys: &[ByAddr]) -> LoadResult<ByAddr, ArtistRow> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.0.to_vec()).collect();
        let rows: Vec<ArtistRow> = sqlx::query_as(&format!(
            "SELECT {ARTIST_COLUMNS} FROM artists a WHERE a.chain_id = $1 AND a.addr = ANY($2)"
        ))
        .bind(self.db.chain_id)
        .bind(keys)
        .fetch_all(&mut *self.db.reader().await.map_err(failed)?)
        .await
        .map_err(failed)?;
        Ok(rows.into_iter().filter_map(|r| Some((ByAddr(arr(r.addr.as_deref()?)), r))).collect())
    }
}

impl Loader<ByNode> for Loaders {
    type Value = ArtistRow;
    type Error = Arc<crate::Error>;

    async fn load(&self, keys: &[ByNode]) -> LoadResult<ByNode, ArtistRow> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.0.to_vec()).collect();
        let rows: Vec<ArtistRow> = sqlx::query_as(&format!(
            "SELECT {ARTIST_COLUMNS} FROM artists a WHERE a.chain_id = $1 AND a.node = ANY($2)"
        ))
        .bind(self.db.chain_id)
        .bind(keys)
        .fetch_all(&mut *self.db.reader().await.map_err(failed)?)
        .await
        .map_err(failed)?;
        Ok(rows.into_iter().map(|r| (ByNode(arr(&r.node)), r)).collect())
    }
}

impl Loader<TextsOf> for Loaders {
    type Value = Vec<TextRow>;
    type Error = Arc<crate::Error>;

    async fn load(&self, keys: &[TextsOf]) -> LoadResult<TextsOf, Vec<TextRow>> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.0.to_vec()).collect();
        let rows: Vec<(Vec<u8>, String, String)> = sqlx::query_as(
            "SELECT node, key, value FROM artist_texts WHERE chain_id = $1 AND node = ANY($2) ORDER BY key",
        )
        .bind(self.db.chain_id)
        .bind(keys)
        .fetch_all(&mut *self.db.reader().await.map_err(failed)?)
        .await
        .map_err(failed)?;
        let mut out: HashMap<TextsOf, Vec<TextRow>> = HashMap::new();
        for (node, key, value) in rows {
            out.entry(TextsOf(arr(&node))).or_default().push(TextRow { key, value });
        }
        Ok(out)
    }
}

impl Loader<EarningsOf> for Loaders {
    type Value = PayeeEarnings;
    type Error = Arc<crate::Error>;

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
        .bind(self.db.chain_id)
        .bind(wanted)
        .fetch_all(&mut *self.db.reader().await.map_err(failed)?)
        .await
        .map_err(failed)?;
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
            let (db, cache) = (self.db.clone(), self.pending.clone());
            tokio::spawn(async move {
                if let Ok(sums) = pending_sums(&db, stale).await {
                    store_pending(&cache, sums);
                }
            });
        }
        if !missing.is_empty() {
            let sums = pending_sums(&self.db, missing).await.map_err(failed)?;
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

impl Loader<ListeningOf> for Loaders {
    type Value = PayeeListening;
    type Error = Arc<crate::Error>;

    async fn load(&self, keys: &[ListeningOf]) -> LoadResult<ListeningOf, PayeeListening> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.0.to_vec()).collect();
        let rows: Vec<(Vec<u8>, i64, i64, i64)> = sqlx::query_as(
            "SELECT payee, streams, seconds, listeners FROM payee_listening WHERE payee = ANY($1)",
        )
        .bind(keys)
        .fetch_all(&mut *self.db.reader().await.map_err(failed)?)
        .await
        .map_err(failed)?;
        Ok(rows
            .into_iter()
            .map(|(p, streams, seconds, listeners)| {
                (ListeningOf(arr(&p)), PayeeListening { streams, seconds, listeners })
            })
            .collect())
    }
}

impl Loader<TrackStatsOf> for Loaders {
    type Value = TrackStats;
    type Error = Arc<crate::Error>;

    async fn load(&self, keys: &[TrackStatsOf]) -> LoadResult<TrackStatsOf, TrackStats> {
        let keys: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows: Vec<(String, i64, i64, i64, String)> = sqlx::query_as(
            "SELECT track_id::text, streams, seconds, listeners, amount::text
             FROM track_listening WHERE track_id = ANY($1::text[]::numeric[])",
        )
        .bind(keys)
        .fetch_all(&mut *self.db.reader().await.map_err(failed)?)
        .await
        .map_err(failed)?;
        Ok(rows
            .into_iter()
            .map(|(id, streams, seconds, listeners, revenue)| {
                (TrackStatsOf(id), TrackStats { streams, seconds, listeners, revenue })
            })
            .collect())
    }
}

impl Loader<TrackById> for Loaders {
    type Value = TrackRow;
    type Error = Arc<crate::Error>;

    async fn load(&self, keys: &[TrackById]) -> LoadResult<TrackById, TrackRow> {
        let keys: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = tracks::by_ids(&self.db, keys).await.map_err(failed)?;
        Ok(rows.into_iter().map(|track| (TrackById(track.id.clone()), track)).collect())
    }
}

impl Loader<SplitEarningsOf> for Loaders {
    type Value = Vec<RecipientEarningsRow>;
    type Error = Arc<crate::Error>;

    async fn load(
        &self,
        keys: &[SplitEarningsOf],
    ) -> LoadResult<SplitEarningsOf, Vec<RecipientEarningsRow>> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.0.to_vec()).collect();
        let rows = splits::earnings_of_splits(&self.db, keys).await.map_err(failed)?;
        let mut out: HashMap<SplitEarningsOf, Vec<RecipientEarningsRow>> = HashMap::new();
        for (split, row) in rows {
            out.entry(SplitEarningsOf(arr(&split))).or_default().push(row);
        }
        Ok(out)
    }
}

impl Loader<PlaySplitOf> for Loaders {
    type Value = SplitRow;
    type Error = Arc<crate::Error>;

    async fn load(&self, keys: &[PlaySplitOf]) -> LoadResult<PlaySplitOf, SplitRow> {
        let pairs = keys.iter().map(|k| (k.0.to_vec(), k.1.clone())).collect();
        let rows = splits::play_splits(&self.db, pairs).await.map_err(failed)?;
        Ok(rows
            .into_iter()
            .map(|(node, track, split)| (PlaySplitOf(arr(&node), track), split))
            .collect())
    }
}

fn failed(e: sqlx::Error) -> Arc<crate::Error> {
    Arc::new(e.into())
}
