//! A derived table as a typed entity: key and row, with generic bulk load, upsert and delete.

use std::{
    collections::{BTreeMap, HashMap},
    hash::Hash,
};

use serde::{Serialize, de::DeserializeOwned};
use sqlx::{Postgres, Transaction};

use super::{
    sql::{
        Columns, Kind, Schema, Value, copy_in, insert_unnest, read_row, select_list, unnest_select,
    },
    tx::BatchTx,
};

/// A derived table. Rows are keyed by `(chain_id, KEY...)`.
pub(crate) trait Entity: Sized + Clone + PartialEq + Serialize + DeserializeOwned {
    /// The key columns' values.
    type Key: Clone + Eq + Hash + Ord + Serialize + DeserializeOwned + std::fmt::Debug;
    /// The table, also the entity's name in the undo log.
    const TABLE: &'static str;
    /// Key columns, without chain_id.
    const KEY: Schema;
    /// Non-key columns.
    const COLUMNS: Schema;

    fn key_values(key: &Self::Key) -> Vec<Value>;
    fn key_from(values: &mut std::vec::IntoIter<Value>) -> Self::Key;
    fn values(&self) -> Vec<Value>;
    fn from_values(values: &mut std::vec::IntoIter<Value>) -> Self;
}

/// The key columns of `keys`.
fn key_columns<E: Entity>(keys: &[E::Key]) -> Columns {
    let mut cols = Columns::new(E::KEY.iter().map(|(_, k)| *k));
    for key in keys {
        cols.push(E::key_values(key));
    }
    cols
}

/// Every column (keys first) of `rows`, and their schema.
fn row_columns<E: Entity>(rows: &[(E::Key, E)]) -> (Vec<(&'static str, Kind)>, Columns) {
    let schema: Vec<_> = E::KEY.iter().chain(E::COLUMNS).copied().collect();
    let mut cols = Columns::new(schema.iter().map(|(_, k)| *k));
    for (key, row) in rows {
        cols.push(E::key_values(key).into_iter().chain(row.values()));
    }
    (schema, cols)
}

/// Loads the rows of `keys` that exist.
pub(crate) async fn load<E: Entity>(
    tx: &mut Transaction<'_, Postgres>,
    chain_id: i64,
    keys: &[E::Key],
) -> sqlx::Result<HashMap<E::Key, E>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let cols = key_columns::<E>(keys);
    let key_names = E::KEY.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {keys}, {values} FROM {table} WHERE chain_id = $1 AND ({key_names}) IN ({rows})",
        keys = select_list(E::KEY),
        values = select_list(E::COLUMNS),
        table = E::TABLE,
        rows = unnest_select(E::KEY, 2),
    );
    let rows = cols.bind(sqlx::query(&sql).bind(chain_id)).fetch_all(&mut **tx).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let mut key = read_row(&row, 0, E::KEY)?.into_iter();
        let mut values = read_row(&row, E::KEY.len(), E::COLUMNS)?.into_iter();
        out.insert(E::key_from(&mut key), E::from_values(&mut values));
    }
    Ok(out)
}

/// Inserts or replaces `rows`.
pub(crate) async fn upsert<E: Entity>(
    tx: &mut Transaction<'_, Postgres>,
    chain_id: i64,
    rows: &[(E::Key, E)],
) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let (schema, cols) = row_columns::<E>(rows);
    let key_names = E::KEY.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    let updates = E::COLUMNS
        .iter()
        .map(|(n, _)| format!("{n} = EXCLUDED.{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let tail = format!("ON CONFLICT (chain_id, {key_names}) DO UPDATE SET {updates}");
    insert_unnest(tx, E::TABLE, chain_id, &schema, cols, &tail).await
}

/// Updates existing rows in place: cheaper than an upsert for rows known to exist.
pub(crate) async fn update<E: Entity>(
    tx: &mut Transaction<'_, Postgres>,
    chain_id: i64,
    rows: &[(E::Key, E)],
) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let (schema, cols) = row_columns::<E>(rows);
    let sets =
        E::COLUMNS.iter().map(|(n, _)| format!("{n} = s.{n}")).collect::<Vec<_>>().join(", ");
    let on = E::KEY.iter().map(|(n, _)| format!("t.{n} = s.{n}")).collect::<Vec<_>>().join(" AND ");
    let sql = format!(
        "UPDATE {table} AS t SET {sets} FROM ({rows}) AS s WHERE t.chain_id = $1 AND {on}",
        table = E::TABLE,
        rows = unnest_select(&schema, 2),
    );
    cols.bind(sqlx::query(&sql).bind(chain_id)).execute(&mut **tx).await?;
    Ok(())
}

/// Deletes the rows of `keys`.
pub(crate) async fn delete<E: Entity>(
    tx: &mut Transaction<'_, Postgres>,
    chain_id: i64,
    keys: &[E::Key],
) -> sqlx::Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let cols = key_columns::<E>(keys);
    let key_names = E::KEY.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "DELETE FROM {table} WHERE chain_id = $1 AND ({key_names}) IN ({rows})",
        table = E::TABLE,
        rows = unnest_select(E::KEY, 2),
    );
    cols.bind(sqlx::query(&sql).bind(chain_id)).execute(&mut **tx).await?;
    Ok(())
}

/// The rows of one entity a batch touches: what was loaded, what the fold made of it, and for each key and block
/// inside the unfinalised window the value before that block (the undo log).
pub(crate) struct Cache<E: Entity> {
    rows: HashMap<E::Key, Option<E>>,
    original: HashMap<E::Key, Option<E>>,
    undo: Vec<(u64, E::Key, Option<E>)>,
    undo_seen: std::collections::HashSet<(u64, E::Key)>,
}

impl<E: Entity> Default for Cache<E> {
    fn default() -> Self {
        Self {
            rows: HashMap::new(),
            original: HashMap::new(),
            undo: Vec::new(),
            undo_seen: Default::default(),
        }
    }
}

impl<E: Entity> Cache<E> {
    /// Loads the rows of `keys` not yet in the cache: from `known` if it has them, else from the database.
    pub(crate) async fn prefetch(
        &mut self,
        tx: &mut BatchTx,
        chain_id: i64,
        known: &Known<E>,
        keys: impl IntoIterator<Item = E::Key>,
    ) -> crate::Result<()> {
        let mut missing: Vec<E::Key> = Vec::new();
        for key in keys {
            if self.rows.contains_key(&key) {
                continue;
            }
            match known.rows.get(&key) {
                Some(row) => {
                    self.original.insert(key.clone(), row.clone());
                    self.rows.insert(key, row.clone());
                }
                None => missing.push(key),
            }
        }
        missing.sort();
        missing.dedup();
        let mut found = load::<E>(&mut tx.0, chain_id, &missing).await?;
        for key in missing {
            let row = found.remove(&key);
            self.original.insert(key.clone(), row.clone());
            self.rows.insert(key, row);
        }
        Ok(())
    }

    /// The current row of a prefetched key.
    pub(crate) fn get(&self, key: &E::Key) -> Option<&E> {
        self.rows.get(key).expect("key was prefetched").as_ref()
    }

    /// Changes the row of `key` in `block`; `undo` says whether `block` is inside the unfinalised window.
    pub(crate) fn update(
        &mut self,
        block: u64,
        undo: bool,
        key: E::Key,
        f: impl FnOnce(Option<E>) -> Option<E>,
    ) {
        let slot = self.rows.get_mut(&key).expect("key was prefetched");
        if undo && self.undo_seen.insert((block, key.clone())) {
            self.undo.push((block, key.clone(), slot.clone()));
        }
        *slot = f(slot.take());
    }

    /// Writes the rows that differ from what was loaded, and the undo entries.
    pub(crate) async fn flush(&mut self, tx: &mut BatchTx, chain_id: i64) -> crate::Result<()> {
        let tx = &mut tx.0;
        let mut inserts = Vec::new();
        let mut updates = Vec::new();
        let mut deletes = Vec::new();
        for (key, row) in &self.rows {
            let original = self.original.get(key).expect("every cached key was loaded");
            if original == row {
                continue;
            }
            match (original, row) {
                (Some(_), Some(row)) => updates.push((key.clone(), row.clone())),
                (None, Some(row)) => inserts.push((key.clone(), row.clone())),
                (_, None) => deletes.push(key.clone()),
            }
        }
        upsert::<E>(tx, chain_id, &inserts).await?;
        update::<E>(tx, chain_id, &updates).await?;
        delete::<E>(tx, chain_id, &deletes).await?;
        write_undo::<E>(tx, chain_id, std::mem::take(&mut self.undo)).await?;
        Ok(())
    }

    /// Hands the rows, as the batch left them, to `known`: call only once the batch has committed.
    pub(crate) fn remember(self, known: &mut Known<E>) {
        known.absorb(self.rows);
    }
}

/// Rows of one entity kept across batches, so that a batch touching rows an earlier one touched need not read them
/// back. It only ever holds what the database holds: it takes a batch's rows once that batch has committed, and the
/// loop empties it on any failed step and on every rollback. Bounded: past [`Known::MAX`] rows it starts over.
pub(crate) struct Known<E: Entity> {
    rows: HashMap<E::Key, Option<E>>,
}

impl<E: Entity> Default for Known<E> {
    fn default() -> Self {
        Self { rows: HashMap::new() }
    }
}

impl<E: Entity> Known<E> {
    /// Rows kept per entity, at most (a few hundred bytes each).
    pub(crate) const MAX: usize = 100_000;

    fn absorb(&mut self, rows: HashMap<E::Key, Option<E>>) {
        if self.rows.len() + rows.len() > Self::MAX {
            self.rows.clear();
        }
        if rows.len() <= Self::MAX {
            self.rows.extend(rows);
        }
    }
}

/// One block's undo entries of an entity: each key it changed, with the row before the block (`None`: no row).
type UndoEntries<E> = Vec<(<E as Entity>::Key, Option<E>)>;

/// Appends the undo entries with `COPY`, one row per block: the block's keys with the rows as they were before it,
/// as JSON `[[key, previous], ...]` (migration 0009). The rows cannot exist yet: a batch writes entries only for its
/// own blocks (above the cursor), all of a block's at once, and a rollback deletes those above the ancestor.
async fn write_undo<E: Entity>(
    tx: &mut Transaction<'_, Postgres>,
    chain_id: i64,
    undo: Vec<(u64, E::Key, Option<E>)>,
) -> sqlx::Result<()> {
    const SCHEMA: Schema =
        &[("block_number", Kind::Int), ("entity", Kind::Text), ("entries", Kind::Bytes)];
    let mut blocks: BTreeMap<u64, UndoEntries<E>> = BTreeMap::new();
    for (block, key, row) in undo {
        blocks.entry(block).or_default().push((key, row));
    }
    let mut cols = Columns::new(SCHEMA.iter().map(|(_, k)| *k));
    for (block, entries) in blocks {
        cols.push([
            Value::Int(block as i64),
            Value::Text(E::TABLE.to_owned()),
            Value::Bytes(serde_json::to_vec(&entries).expect("keys and rows serialise")),
        ]);
    }
    copy_in(tx, "indexer_undo", chain_id, SCHEMA, cols).await
}

/// Restores every row of this entity changed above `ancestor` to its value at `ancestor`.
pub(crate) async fn rollback<E: Entity>(
    tx: &mut Transaction<'_, Postgres>,
    chain_id: i64,
    ancestor: u64,
) -> sqlx::Result<usize> {
    // Oldest block first, and the first entry of each key wins: its value before the oldest block rolled back. Keys
    // are compared parsed, not as bytes (entries migrated from JSONB print their JSON differently).
    let blocks: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT entries FROM indexer_undo \
         WHERE chain_id = $1 AND entity = $2 AND block_number > $3 ORDER BY block_number ASC",
    )
    .bind(chain_id)
    .bind(E::TABLE)
    .bind(ancestor as i64)
    .fetch_all(&mut **tx)
    .await?;
    let mut restored: HashMap<E::Key, Option<E>> = HashMap::new();
    for entries in blocks {
        let entries: UndoEntries<E> =
            serde_json::from_slice(&entries).expect("undo entries were written by this entity");
        for (key, previous) in entries {
            restored.entry(key).or_insert(previous);
        }
    }
    let mut upserts = Vec::new();
    let mut deletes = Vec::new();
    for (key, previous) in restored {
        match previous {
            Some(row) => upserts.push((key, row)),
            None => deletes.push(key),
        }
    }
    let n = upserts.len() + deletes.len();
    upsert::<E>(tx, chain_id, &upserts).await?;
    delete::<E>(tx, chain_id, &deletes).await?;
    Ok(n)
}
