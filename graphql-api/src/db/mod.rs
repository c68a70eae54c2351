//! Every SQL statement of the API and the rows they read. The schema asks for rows by what they mean (an artist by
//! name, a page of settlements after a cursor) and never sees a query; nothing outside this module uses `sqlx`.

pub(crate) mod artists;
pub(crate) mod keeper;
mod list;
pub(crate) mod listeners;
mod loaders;
pub(crate) mod notify;
mod pool;
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
pub(crate) use pool::Db;
pub(crate) use tracks::TrackRow;

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
