//! Tracks: the list of an artist's, by id (for the loader), and the ranking by revenue.

use sqlx::{Row, postgres::PgRow};

use super::{
    list::{Bind, Filter, List, ListQuery},
    pool::{Db, b, i, s},
};
use crate::Result;

/// A `tracks` row, with the artist's rate where the track has none of its own.
#[derive(Clone, Debug)]
pub(crate) struct TrackRow {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) duration: i64,
    pub(crate) rate: String,
    pub(crate) content_hash: Vec<u8>,
    pub(crate) metadata_uri: String,
    pub(crate) published: bool,
    pub(crate) published_at: i64,
    pub(crate) artist_node: Vec<u8>,
}

const SELECT: &str = "t.track_id::text AS id, t.title, t.duration::int8 AS duration,
     (CASE WHEN t.rate_per_second > 0 THEN t.rate_per_second ELSE a.rate_per_second END)::text AS rate,
     t.content_hash, t.metadata_uri, t.published,
     extract(epoch FROM t.published_at)::int8 AS published_at, t.artist_node";
const FROM: &str = "tracks t JOIN artists a ON a.chain_id = t.chain_id AND a.node = t.artist_node";

/// The tracks of the artist at `artist_node`, lowest id first.
pub(crate) fn of_artist(db: &Db, artist_node: Vec<u8>) -> List<TrackRow> {
    let query = ListQuery {
        select: SELECT,
        from: FROM,
        base: "t.chain_id = $1",
        chain_id: db.chain_id,
        filters: vec![Filter::new("t.artist_node =", Bind::Bytes(artist_node))],
        keys: &[("t.track_id", "numeric")],
        descending: false,
    };
    List::new(query, node)
}

fn node(row: &PgRow) -> sqlx::Result<(TrackRow, Vec<String>)> {
    let id = s(row, "id")?;
    let node = TrackRow {
        id: id.clone(),
        title: s(row, "title")?,
        duration: i(row, "duration")?,
        rate: s(row, "rate")?,
        content_hash: b(row, "content_hash")?,
        metadata_uri: s(row, "metadata_uri")?,
        published: row.try_get("published")?,
        published_at: i(row, "published_at")?,
        artist_node: b(row, "artist_node")?,
    };
    Ok((node, vec![id]))
}

/// The tracks with these ids (decimal strings) that exist; a row that does not read is left out.
pub(super) async fn by_ids(db: &Db, ids: Vec<String>) -> sqlx::Result<Vec<TrackRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {SELECT} FROM {FROM} WHERE t.chain_id = $1 AND t.track_id = ANY($2::text[]::numeric[])"
    ))
    .bind(db.chain_id)
    .bind(ids)
    .fetch_all(&mut *db.reader().await?)
    .await?;
    Ok(rows.iter().filter_map(|row| node(row).ok()).map(|(track, _)| track).collect())
}

/// A track's place in a ranking, by id.
#[derive(Clone, Debug)]
pub(crate) struct TrackRankingRow {
    pub(crate) track_id: String,
    pub(crate) streams: i64,
    pub(crate) seconds: i64,
    pub(crate) revenue: String,
}

/// The `limit` tracks (of one payee, or of everyone) that earned most: over all time, or over the UTC days the last
/// `since_hours` touch.
pub(crate) async fn top(
    db: &Db,
    payee: Option<Vec<u8>>,
    since_hours: Option<i32>,
    limit: i32,
) -> Result<Vec<TrackRankingRow>> {
    // All time: the per-track totals; a window: the per-day totals of the days it touches.
    let rows: Vec<(String, i64, i64, String)> = match since_hours {
        None => {
            sqlx::query_as(
                "SELECT track_id::text, streams, seconds, amount::text FROM track_listening
                 WHERE ($1::bytea IS NULL OR payee = $1)
                 ORDER BY amount DESC, track_id LIMIT $2",
            )
            .bind(payee)
            .bind(i64::from(limit))
            .fetch_all(&mut *db.reader().await?)
            .await?
        }
        Some(hours) => {
            sqlx::query_as(
                "SELECT d.track_id::text, sum(d.streams)::int8, sum(d.seconds)::int8, sum(d.amount)::text
                 FROM track_listening_daily d
                 WHERE d.day >= (now() AT TIME ZONE 'UTC' - make_interval(hours => $2))::date
                   AND ($1::bytea IS NULL
                        OR d.track_id IN (SELECT track_id FROM track_listening WHERE payee = $1))
                 GROUP BY d.track_id ORDER BY sum(d.amount) DESC, d.track_id LIMIT $3",
            )
            .bind(payee)
            .bind(hours)
            .bind(i64::from(limit))
            .fetch_all(&mut *db.reader().await?)
            .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(track_id, streams, seconds, revenue)| TrackRankingRow {
            track_id,
            streams,
            seconds,
            revenue,
        })
        .collect())
}
