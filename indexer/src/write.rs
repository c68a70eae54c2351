//! The indexer's writes: one transaction per batch of blocks, holding the raw events, the derived rows, the undo
//! log, the recent block hashes and the cursor, so a crash at any point leaves either all of a batch or none of it.
//! A batch is written in two steps, [`stage`] and [`finish`], so that the next batch's raw rows go in while the
//! one before it completes. The statements are [`crate::db`]'s; the fold is [`crate::state`]'s.

use crate::{
    chain::{BlockRef, Cursor},
    db::{BatchTx, Changed, Db, raw::RawBatch},
    error::joined,
    events::{Event, EventKind},
    state::{Derived, Remembered, Root},
};

/// What one committed batch did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Written {
    pub(crate) events: usize,
    pub(crate) inconsistencies: u64,
}

/// One batch of consecutive blocks `[from, to]` to commit.
pub(crate) struct Batch {
    /// The batch's span (`batch`, with its block range): its staging, fold and commit log inside it.
    pub(crate) span: tracing::Span,
    pub(crate) chain_id: i64,
    /// Decoded events in chain order.
    pub(crate) events: Vec<Event>,
    /// Headers of the blocks of this batch inside the unfinalised window (for reorg detection).
    pub(crate) headers: Vec<BlockRef>,
    /// The cursor this batch extends: the block before its first (`None` before the first batch of a chain).
    pub(crate) previous: Option<Cursor>,
    /// The batch's last block: the new cursor.
    pub(crate) cursor: Cursor,
    /// Blocks above this are inside the unfinalised window: their derived changes get undo entries.
    pub(crate) finalized: u64,
}

/// A batch half written: its transaction is open and holds most of its vault and registry raw rows, which need
/// nothing but the batch itself. [`finish`] adds the rest and commits, once the batch before it has committed.
///
/// This is what lets two batches be written at once on two connections (so on two Postgres backends, and two
/// cores): the raw `COPY` of one batch runs while the batch before it writes its last raw rows, folds, writes its
/// derived rows and commits. Each batch still commits all of itself, cursor included, in one transaction, and
/// strictly in block order: [`finish`] moves the cursor only from where the batch starts
/// ([`BatchTx::move_cursor`]).
/// Dropping a `Staged` rolls it back.
pub(crate) struct Staged {
    tx: BatchTx,
    batch: Batch,
    /// Events before this index had their raw rows written by [`stage`].
    staged: usize,
    raw_rows: usize,
    started: std::time::Instant,
    raw_ms: u64,
}

impl Staged {
    /// The batch's last block.
    pub(crate) fn cursor(&self) -> Cursor {
        self.batch.cursor
    }

    /// The batch's span.
    pub(crate) fn span(&self) -> tracing::Span {
        self.batch.span.clone()
    }
}

/// The share of a batch's raw rows [`stage`] writes; [`finish`] writes the rest beside the fold. Chosen so that the
/// two take about as long, since each pair of them runs side by side (docs/INDEXER.md, "Two batches at once", has
/// the measured times).
const STAGED_SHARE: (usize, usize) = (2, 3);

/// Opens the batch's transaction and writes the first [`STAGED_SHARE`] of its vault and registry raw rows. ENS rows
/// wait for [`finish`]: which of them are mirrored depends on the artists registered before them, derived state.
pub(crate) async fn stage(db: Db, batch: Batch) -> crate::Result<Staged> {
    let started = std::time::Instant::now();
    let mut tx = db.begin().await?;
    let staged = batch.events.len() * STAGED_SHARE.0 / STAGED_SHARE.1;
    let mut raw = RawBatch::new();
    for (i, event) in batch.events[..staged].iter().enumerate() {
        if !matches!(event.kind, EventKind::Ens(_)) {
            raw.push(&batch.events, i);
        }
    }
    let raw_rows = raw.len();
    tx.copy_raw(raw, batch.chain_id).await?;
    let raw_ms = started.elapsed().as_millis() as u64;
    Ok(Staged { tx, batch, staged, raw_rows, started, raw_ms })
}

/// Completes a staged batch: derived state, undo log, the ENS raw rows, headers, cursor, notifications, and
/// commits. Derived rows in `known` are taken from there rather than read back (so the batch before must have
/// committed); once committed, the batch's rows join `known`. On an error the caller must clear `known` (a failed
/// COMMIT may still have committed).
pub(crate) async fn finish(
    staged: Staged,
    root: &Root,
    known: &mut Remembered,
) -> crate::Result<Written> {
    let Staged { mut tx, batch, staged, raw_rows, started, raw_ms } = staged;
    let waited = started.elapsed();
    let chain_id = batch.chain_id;
    let mut derived = Derived::default();
    derived.prefetch(&mut tx, chain_id, root, known, &batch.events).await?;
    let prefetched = started.elapsed();
    // The vault and registry raw rows that `stage` left need nothing from the fold: they stream in on this connection
    // while the fold runs on a blocking thread. The mirrored ENS rows follow the fold, which decides them.
    let mut raw = RawBatch::new();
    for (i, event) in batch.events.iter().enumerate().skip(staged) {
        if !matches!(event.kind, EventKind::Ens(_)) {
            raw.push(&batch.events, i);
        }
    }
    let rest_rows = raw.len();
    let Batch { events, headers, previous, cursor, finalized, .. } = batch;
    let fold = {
        let root = root.clone();
        tokio::task::spawn_blocking(move || {
            let mut ens = RawBatch::new();
            let mut changed = Changed::default();
            for (i, event) in events.iter().enumerate() {
                if let EventKind::Ens(e) = &event.kind {
                    if !derived.in_subtree(&root, e) {
                        continue;
                    }
                    ens.push(&events, i);
                }
                derived.apply(&root, &events, i, event.at.block_number > finalized, &mut changed);
            }
            (derived, ens, changed)
        })
    };
    let (folded, copied) = tokio::join!(fold, tx.copy_raw(raw, chain_id));
    let (mut derived, ens, changed) = joined("fold", folded)?;
    copied?;
    let folded = started.elapsed();
    let written = Written {
        events: raw_rows + rest_rows + ens.len(),
        inconsistencies: derived.inconsistencies,
    };
    tx.copy_raw(ens, chain_id).await?;
    let raw_written = started.elapsed();
    derived.flush(&mut tx, chain_id).await?;
    let derived_written = started.elapsed();
    tx.insert_headers(chain_id, &headers).await?;
    tx.move_cursor(chain_id, previous, cursor).await?;
    tx.prune(chain_id, finalized).await?;
    tx.notify(cursor.number, changed).await?;
    tx.commit().await?;
    derived.remember(known);
    tracing::debug!(
        target: "beatstream::indexer::store",
        events = written.events,
        raw_ms,
        waited_ms = (waited.as_millis() as u64).saturating_sub(raw_ms),
        prefetch_ms = (prefetched - waited).as_millis() as u64,
        fold_and_raw_rest_ms = (folded - prefetched).as_millis() as u64,
        ens_ms = (raw_written - folded).as_millis() as u64,
        derived_ms = (derived_written - raw_written).as_millis() as u64,
        rest_ms = (started.elapsed() - derived_written).as_millis() as u64,
        "batch timings"
    );
    Ok(written)
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{Address, B256, U256};
    use beatstream_primitives::contracts::BeatStreamVault::{
        BeatStreamVaultEvents as Vault, Deposited,
    };
    use beatstream_testkit::TestDb;

    use super::*;
    use crate::{Error, events::LogPosition};

    fn root() -> Root {
        Root { node: crate::state::namehash("beatstream.eth"), name: "beatstream.eth".into() }
    }

    /// A batch of block `number` holding one deposit of `amount`, extending `previous`.
    fn deposit_batch(number: u64, previous: Option<Cursor>, amount: u64) -> Batch {
        let hash = B256::with_last_byte(number as u8);
        let at = LogPosition {
            block_number: number,
            block_hash: hash,
            block_time: 1_700_000_000 + number,
            tx_hash: B256::repeat_byte(0xee),
            log_index: 0,
        };
        let deposit = Deposited {
            listener: Address::repeat_byte(0x11),
            from: Address::repeat_byte(0x11),
            amount: U256::from(amount),
        };
        Batch {
            span: tracing::Span::none(),
            chain_id: 31337,
            events: vec![Event {
                at,
                kind: EventKind::Vault(Vault::Deposited(deposit)),
                tip_message: None,
            }],
            headers: vec![],
            previous,
            cursor: Cursor { number, hash },
            finalized: number,
        }
    }

    async fn available(db: &TestDb) -> eyre::Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT available::text FROM listener_accounts")
            .fetch_all(db.pool())
            .await?)
    }

    /// A batch that does not start at the cursor (another writer moved it) fails with `CursorMoved` and writes
    /// nothing: not its raw rows, not its derived rows, not the cursor.
    #[tokio::test]
    async fn a_batch_commits_only_from_where_it_starts() -> eyre::Result<()> {
        let db = TestDb::new().await?;
        let root = root();
        let mut known = Remembered::default();
        let first = deposit_batch(10, None, 5);
        let at_first = first.cursor;
        let staged = stage(Db::from(db.pool().clone()), first).await?;
        finish(staged, &root, &mut known).await?;

        // A second "first" batch, and one extending a block that is not the cursor.
        for previous in [None, Some(Cursor { number: 9, hash: B256::with_last_byte(9) })] {
            let staged = stage(Db::from(db.pool().clone()), deposit_batch(11, previous, 7)).await?;
            let err = finish(staged, &root, &mut Remembered::default()).await.unwrap_err();
            assert!(matches!(err, Error::CursorMoved { .. }), "{err}");
        }
        assert_eq!(Db::from(db.pool().clone()).cursor(31337).await?, Some(at_first));
        let deposits: i64 =
            sqlx::query_scalar("SELECT count(*) FROM vault_deposits").fetch_one(db.pool()).await?;
        assert_eq!(deposits, 1);
        assert_eq!(available(&db).await?, ["5"]);

        // Staged batches in flight together commit in order; the second sees the first's derived rows.
        let second = deposit_batch(11, Some(at_first), 7);
        let third = deposit_batch(12, Some(second.cursor), 9);
        let (second, third) = tokio::try_join!(
            stage(Db::from(db.pool().clone()), second),
            stage(Db::from(db.pool().clone()), third)
        )?;
        let at_third = third.cursor();
        finish(second, &root, &mut known).await?;
        finish(third, &root, &mut known).await?;
        assert_eq!(Db::from(db.pool().clone()).cursor(31337).await?, Some(at_third));
        assert_eq!(available(&db).await?, ["21"]);
        Ok(())
    }

    /// Commits deposits of 5, 7 and 9 in blocks 10, 11 and 12; blocks above `finalized` get undo entries.
    async fn three_deposits(db: &TestDb, finalized: u64) -> eyre::Result<[Cursor; 3]> {
        let mut known = Remembered::default();
        let mut previous = None;
        let mut cursors = Vec::new();
        for (number, amount) in [(10, 5), (11, 7), (12, 9)] {
            let batch = Batch { finalized, ..deposit_batch(number, previous, amount) };
            previous = Some(batch.cursor);
            cursors.push(batch.cursor);
            finish(stage(Db::from(db.pool().clone()), batch).await?, &root(), &mut known).await?;
        }
        Ok(cursors.try_into().expect("three"))
    }

    /// The undo log as (block, entity, {key: previous}), whatever its layout.
    async fn undo_log(db: &TestDb) -> eyre::Result<Vec<(i64, String, serde_json::Value)>> {
        let rows: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(
            "SELECT block_number, entity, entries FROM indexer_undo ORDER BY block_number, entity",
        )
        .fetch_all(db.pool())
        .await?;
        let mut log = Vec::new();
        for (block, entity, entries) in rows {
            let entries: Vec<(serde_json::Value, serde_json::Value)> =
                serde_json::from_slice(&entries)?;
            let entries = entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            log.push((block, entity, serde_json::Value::Object(entries)));
        }
        Ok(log)
    }

    /// Entries logged before migration 0009 (a row per block and key) are packed per block by it, and a rollback
    /// after the upgrade restores what they say, as on a database that logged them packed.
    #[tokio::test]
    async fn undo_entries_logged_before_0009_still_roll_back() -> eyre::Result<()> {
        let packed = TestDb::new().await?;
        let cursors = three_deposits(&packed, 0).await?;
        let expected = undo_log(&packed).await?;
        let blocks: std::collections::BTreeSet<i64> = expected.iter().map(|e| e.0).collect();
        assert_eq!(blocks.into_iter().collect::<Vec<_>>(), [10, 11, 12], "{expected:?}");

        // The same chain on a database at 0008, its undo log in 0008's layout.
        let old = TestDb::empty().await?;
        let through_0008 = sqlx::migrate::Migrator {
            migrations: beatstream_primitives::db::MIGRATOR
                .iter()
                .filter(|m| m.version <= 8)
                .cloned()
                .collect::<Vec<_>>()
                .into(),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        through_0008.run(old.pool()).await?;
        three_deposits(&old, 12).await?;
        for (block, entity, entries) in &expected {
            for (key, previous) in entries.as_object().expect("an object") {
                sqlx::query(
                    "INSERT INTO indexer_undo (chain_id, block_number, entity, key, previous) \
                     VALUES (31337, $1, $2, $3, $4)",
                )
                .bind(block)
                .bind(entity)
                .bind(key.as_bytes())
                .bind((!previous.is_null()).then(|| previous.to_string().into_bytes()))
                .execute(old.pool())
                .await?;
            }
        }

        beatstream_primitives::db::migrate(old.pool()).await?;
        assert_eq!(undo_log(&old).await?, expected);
        for db in [&packed, &old] {
            assert_eq!(available(db).await?, ["21"]);
            // Two blocks at once: the older block's entry is the value to restore.
            Db::from(db.pool().clone()).rollback(31337, cursors[2], cursors[0]).await?;
            assert_eq!(available(db).await?, ["5"]);
        }
        Ok(())
    }
}
