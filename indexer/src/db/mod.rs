//! Every SQL statement of the indexer and the rows they write: the raw tables ([`raw`]), the derived tables
//! ([`entities`], read and written through [`entity`]'s caches), the bulk-writing toolkit ([`sql`]), the batch's
//! bookkeeping ([`store`]) and the rollback after a reorg. Nothing outside this module uses `sqlx`: the loop holds a
//! [`Db`], a batch its [`BatchTx`].

mod conn;
pub(crate) mod entities;
pub(crate) mod entity;
pub(crate) mod raw;
mod rollback;
pub(crate) mod sql;
pub(crate) mod store;
mod tx;

pub(crate) use conn::Db;
pub(crate) use store::Changed;
pub(crate) use tx::BatchTx;

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
