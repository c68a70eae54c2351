//! Artists: by name, the list, and the payee address behind a name.

use sqlx::{FromRow, postgres::PgRow};

use super::{
    list::{List, ListQuery},
    pool::Db,
};
use crate::Result;

/// The `artists` row.
#[derive(Clone, Debug, FromRow)]
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

/// The columns of an [`ArtistRow`], from `artists a`.
pub(super) const COLUMNS: &str =
    "a.node, a.label, a.name, a.owner, a.addr, a.rate_per_second::text AS rate,
     extract(epoch FROM a.registered_at)::int8 AS registered_at, a.registered_block";

/// Order of the artist list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArtistOrder {
    /// Alphabetical by name.
    Name,
    /// Most recently registered first.
    Newest,
}

/// The artist with this full ENS name.
pub(crate) async fn by_name(db: &Db, name: &str) -> Result<Option<ArtistRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM artists a WHERE a.chain_id = $1 AND a.name = $2"
    ))
    .bind(db.chain_id)
    .bind(name)
    .fetch_optional(&mut *db.reader().await?)
    .await?)
}

/// The `addr` record of the artist with this full ENS name: `None` when there is no such artist, `Some(None)` when
/// it has no record.
pub(crate) async fn addr_by_name(db: &Db, name: &str) -> Result<Option<Option<Vec<u8>>>> {
    Ok(sqlx::query_scalar("SELECT addr FROM artists WHERE chain_id = $1 AND name = $2")
        .bind(db.chain_id)
        .bind(name)
        .fetch_optional(&mut *db.reader().await?)
        .await?)
}

/// Every artist, in `order`.
pub(crate) fn list(db: &Db, order: ArtistOrder) -> List<ArtistRow> {
    let query = ListQuery {
        select: "a.node, a.label, a.name, a.owner, a.addr, a.rate_per_second::text AS rate,
                 extract(epoch FROM a.registered_at)::int8 AS registered_at, a.registered_block",
        from: "artists a",
        base: "a.chain_id = $1",
        chain_id: db.chain_id,
        filters: Vec::new(),
        keys: match order {
            ArtistOrder::Name => &[("a.name", "text")],
            ArtistOrder::Newest => &[("a.registered_block", "int8"), ("a.name", "text")],
        },
        descending: order == ArtistOrder::Newest,
    };
    match order {
        ArtistOrder::Name => List::new(query, by_name_node),
        ArtistOrder::Newest => List::new(query, newest_node),
    }
}

fn by_name_node(row: &PgRow) -> sqlx::Result<(ArtistRow, Vec<String>)> {
    let r = ArtistRow::from_row(row)?;
    let key = vec![r.name.clone()];
    Ok((r, key))
}

fn newest_node(row: &PgRow) -> sqlx::Result<(ArtistRow, Vec<String>)> {
    let r = ArtistRow::from_row(row)?;
    let key = vec![r.registered_block.to_string(), r.name.clone()];
    Ok((r, key))
}
