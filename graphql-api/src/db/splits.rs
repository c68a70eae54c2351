//! Revenue splits (migration 0015): every version of an artist's and its tracks' splits, the version in force, and
//! what each recipient of each version was paid.

use sqlx::{Row, postgres::PgRow};

use super::{
    list::{Bind, Filter, List, ListQuery},
    pool::{Db, b, i, s},
};
use crate::Result;

/// A `splits` row (one version of one split), and whether it is the version in force for its (artist, track).
#[derive(Clone, Debug)]
pub(crate) struct SplitRow {
    /// The version's payee address.
    pub(crate) split: Vec<u8>,
    pub(crate) node: Vec<u8>,
    /// 0: the artist's own split.
    pub(crate) track_id: String,
    pub(crate) version: i64,
    pub(crate) recipients: Vec<Vec<u8>>,
    /// Basis points, recipient by recipient.
    pub(crate) shares: Vec<i32>,
    pub(crate) set_at: i64,
    pub(crate) set_block: i64,
    pub(crate) cleared_at: Option<i64>,
    pub(crate) cleared_block: Option<i64>,
    pub(crate) in_force: bool,
}

/// The columns of a [`SplitRow`], from `splits sp` (a macro, so other selects can `concat!` it).
macro_rules! split_columns {
    () => {
        "sp.split, sp.node, sp.track_id::text AS track_id, sp.version, sp.recipients, sp.shares,
         extract(epoch FROM sp.set_at)::int8 AS set_at, sp.set_block,
         extract(epoch FROM sp.cleared_at)::int8 AS cleared_at, sp.cleared_block,
         EXISTS (SELECT 1 FROM split_in_force f WHERE f.chain_id = sp.chain_id AND f.node = sp.node
                 AND f.track_id = sp.track_id AND f.split = sp.split) AS in_force"
    };
}

/// The columns of a [`SplitRow`], from `splits sp`.
const COLUMNS: &str = split_columns!();

/// Reads the [`COLUMNS`] of a row.
fn split_row(row: &PgRow) -> sqlx::Result<SplitRow> {
    Ok(SplitRow {
        split: b(row, "split")?,
        node: b(row, "node")?,
        track_id: s(row, "track_id")?,
        version: i(row, "version")?,
        recipients: row.try_get("recipients")?,
        shares: row.try_get("shares")?,
        set_at: i(row, "set_at")?,
        set_block: i(row, "set_block")?,
        cleared_at: row.try_get("cleared_at")?,
        cleared_block: row.try_get("cleared_block")?,
        in_force: row.try_get("in_force")?,
    })
}

/// Every version of the splits of the artist at `node` (its own, track 0, and its tracks'), by track then version.
pub(crate) fn of_artist(db: &Db, node: Vec<u8>) -> List<SplitRow> {
    let query = ListQuery {
        select: COLUMNS,
        from: "splits sp",
        base: "sp.chain_id = $1",
        chain_id: db.chain_id,
        filters: vec![Filter::new("sp.node =", Bind::Bytes(node))],
        keys: &[("sp.track_id", "numeric"), ("sp.version", "int8")],
        descending: false,
    };
    List::new(query, |row| {
        let r = split_row(row)?;
        let key = vec![r.track_id.clone(), r.version.to_string()];
        Ok((r, key))
    })
}

/// Every version of the split of one track (`track_id` a decimal string) of the artist at `node`, oldest first.
pub(crate) fn of_track(db: &Db, node: Vec<u8>, track_id: String) -> List<SplitRow> {
    let query = ListQuery {
        select: COLUMNS,
        from: "splits sp",
        base: "sp.chain_id = $1",
        chain_id: db.chain_id,
        filters: vec![
            Filter::new("sp.node =", Bind::Bytes(node)),
            Filter::new("sp.track_id =", Bind::Cast(track_id, "numeric")),
        ],
        keys: &[("sp.version", "int8")],
        descending: false,
    };
    List::new(query, |row| {
        let r = split_row(row)?;
        let key = vec![r.version.to_string()];
        Ok((r, key))
    })
}

/// The versions in force of the artist at `node`, one per track that has one (track 0: the artist's), by track.
pub(crate) async fn in_force_of_artist(db: &Db, node: &[u8]) -> Result<Vec<SplitRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM split_in_force f
         JOIN splits sp ON sp.chain_id = f.chain_id AND sp.split = f.split
         WHERE f.chain_id = $1 AND f.node = $2 ORDER BY f.track_id"
    ))
    .bind(db.chain_id)
    .bind(node)
    .fetch_all(&mut *db.reader().await?)
    .await?;
    Ok(rows.iter().map(split_row).collect::<sqlx::Result<_>>()?)
}

/// What one recipient of one split version was paid (a `split_earnings` row).
#[derive(Clone, Debug)]
pub(crate) struct RecipientEarningsRow {
    pub(crate) recipient: Vec<u8>,
    /// Everything the version paid the recipient: its parts of settlements and of tips.
    pub(crate) earned: String,
    /// The part of `earned` that came from tips.
    pub(crate) from_tips: String,
    /// `SplitPaid` events that paid it.
    pub(crate) payments: i64,
}

/// A recipient's earnings from one split version, with the version.
#[derive(Clone, Debug)]
pub(crate) struct RecipientSplitRow {
    pub(crate) split: SplitRow,
    pub(crate) earnings: RecipientEarningsRow,
}

/// What `recipient` earned from each split version that paid it, newest version first.
pub(crate) fn earnings_of_recipient(db: &Db, recipient: Vec<u8>) -> List<RecipientSplitRow> {
    let query = ListQuery {
        select: concat!(
            split_columns!(),
            ", e.recipient, e.earned::text AS earned, e.from_tips::text AS from_tips, e.payments"
        ),
        from: "split_earnings e JOIN splits sp ON sp.chain_id = e.chain_id AND sp.split = e.split",
        base: "e.chain_id = $1",
        chain_id: db.chain_id,
        filters: vec![Filter::new("e.recipient =", Bind::Bytes(recipient))],
        keys: &[("sp.set_block", "int8"), ("e.split", "bytea")],
        descending: true,
    };
    List::new(query, |row| {
        let split = split_row(row)?;
        let key =
            vec![split.set_block.to_string(), format!("\\x{}", alloy::hex::encode(&split.split))];
        let earnings = RecipientEarningsRow {
            recipient: b(row, "recipient")?,
            earned: s(row, "earned")?,
            from_tips: s(row, "from_tips")?,
            payments: i(row, "payments")?,
        };
        Ok((RecipientSplitRow { split, earnings }, key))
    })
}

/// The earnings rows of these split payees, by payee (for the loader).
pub(super) async fn earnings_of_splits(
    db: &Db,
    splits: Vec<Vec<u8>>,
) -> sqlx::Result<Vec<(Vec<u8>, RecipientEarningsRow)>> {
    type Row = (Vec<u8>, Vec<u8>, String, String, i64);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT split, recipient, earned::text, from_tips::text, payments FROM split_earnings
         WHERE chain_id = $1 AND split = ANY($2::bytea[])",
    )
    .bind(db.chain_id)
    .bind(splits)
    .fetch_all(&mut *db.reader().await?)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(split, recipient, earned, from_tips, payments)| {
            (split, RecipientEarningsRow { recipient, earned, from_tips, payments })
        })
        .collect())
}

/// For each (artist node, track id) pair, the split a play of the track pays (the vault's `playPayee` rule): the
/// track's version in force, else the artist's (track 0), else none (the pair is left out).
pub(super) async fn play_splits(
    db: &Db,
    pairs: Vec<(Vec<u8>, String)>,
) -> sqlx::Result<Vec<(Vec<u8>, String, SplitRow)>> {
    let (nodes, tracks): (Vec<Vec<u8>>, Vec<String>) = pairs.into_iter().unzip();
    let rows = sqlx::query(&format!(
        "SELECT DISTINCT ON (k.node, k.track) k.node AS key_node, k.track AS key_track, {COLUMNS}
         FROM unnest($2::bytea[], $3::text[]) AS k (node, track)
         JOIN split_in_force f
           ON f.chain_id = $1 AND f.node = k.node AND f.track_id IN (k.track::numeric, 0)
         JOIN splits sp ON sp.chain_id = f.chain_id AND sp.split = f.split
         ORDER BY k.node, k.track, f.track_id DESC"
    ))
    .bind(db.chain_id)
    .bind(nodes)
    .bind(tracks)
    .fetch_all(&mut *db.reader().await?)
    .await?;
    rows.iter()
        .map(|row| Ok((b(row, "key_node")?, s(row, "key_track")?, split_row(row)?)))
        .collect()
}
