//! Every SQL statement of the API and the rows they read. The schema asks for rows by what they mean (an artist by
//! name, a page of settlements after a cursor) and never sees a query; nothing outside this module uses `sqlx`.

pub(crate) mod artists;
pub(crate) mod keeper;
mod list;
pub(crate) mod listeners;
mod loaders;
pub(crate) mod notify;
pub(crate) mod sessions;
pub(crate) mod settlements;
pub(crate) mod stats;
pub(crate) mod tracks;

pub(crate) use artists::{ArtistOrder, ArtistRow};
pub(crate) use list::{List, ListQuery};
pub(crate) use loaders::{
    ByAddr, ByNode, EarningsOf, ListeningOf, Loaders, PayeeEarnings, PayeeListening, TextRow,
    TextsOf, TrackById, TrackStats, TrackStatsOf,
};
pub(crate) use tracks::TrackRow;

use std::time::Duration;

use beatstream_primitives::db::PoolBuilder;
use sqlx::{PgPool, Row, postgres::PgRow};

use crate::Result;

/// The API's database: a pool of read connections and the chain whose mirror it serves.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    pool: PgPool,
    chain_id: i64,
}

impl Db {
    /// Connects (every statement under `statement_timeout_ms`, at most `connections` at once) and migrates.
    pub(crate) async fn connect(
        database_url: &str,
        chain_id: i64,
        statement_timeout_ms: u64,
        connections: u32,
    ) -> Result<Self> {
        let pool = PoolBuilder::new(database_url)
            .application_name("beatstream-api")
            .statement_timeout(Duration::from_millis(statement_timeout_ms))
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(5))
            // sqlx's own default, which the API always had.
            .idle_timeout(Some(Duration::from_secs(600)))
            .connect()
            .await?;
        beatstream_primitives::db::migrate(&pool).await?;
        Ok(Self { pool, chain_id })
    }
}

impl From<sqlx::Error> for crate::Error {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(Box::new(e))
    }
}

fn i(row: &PgRow, col: &str) -> sqlx::Result<i64> {
    row.try_get::<i64, _>(col)
}

fn s(row: &PgRow, col: &str) -> sqlx::Result<String> {
    row.try_get::<String, _>(col)
}

fn b(row: &PgRow, col: &str) -> sqlx::Result<Vec<u8>> {
    row.try_get::<Vec<u8>, _>(col)
}

#[cfg(test)]
mod tests {
    /// Outside `db/`, no source file's code (its tests aside) uses `sqlx`: the rest of the crate speaks in rows.
    #[test]
    fn only_db_uses_sqlx() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        let mut dirs = vec![src.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if path != src.join("db") {
                        dirs.push(path);
                    }
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                    if code.contains("sqlx") {
                        offenders.push(path.display().to_string());
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "sqlx used outside db/: {offenders:?}");
    }
}
