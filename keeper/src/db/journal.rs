//! The keeper's write-ahead journal: `keeper_batches`, `keeper_batch_items`, `keeper_batch_tips` and
//! `keeper_attempts`.
//!
//! A batch's items, tips, nonce and first signed transaction are committed before anything is broadcast, so a crash
//! leaves either nothing sent or a journaled transaction the next step follows. Every write runs in a transaction
//! that first reads the lease row of its chain and vault (`keeper_lease`, keyed like the advisory lock) `FOR SHARE`
//! and checks the epoch the caller leads under: a keeper that lost the
//! lease without noticing fails its next write ([`Error::LostLease`]) instead of journaling beside the new leader,
//! and a takeover waits for a write in progress to commit.

use std::{future::Future, pin::Pin};

use alloy::primitives::{Address, B256, U256};
use sqlx::{PgPool, Postgres, Transaction};

use super::{
    lease::LeaseKey,
    pool::Db,
    types::{AttemptKind, BatchKind, BatchStatus, Outcome},
};
use crate::{
    Error, Result,
    book::{Candidate, Tip},
};

/// An open batch of the journal (`pending`, `broadcast` or `mined`).
#[derive(Debug)]
pub(crate) struct OpenBatch {
    pub(crate) id: i64,
    pub(crate) nonce: u64,
    pub(crate) status: BatchStatus,
    pub(crate) kind: BatchKind,
    /// The hash of the attempt recorded as mined, while `mined`.
    pub(crate) mined_hash: Option<B256>,
}

/// One signed transaction of a batch.
#[derive(Clone, Debug)]
pub(crate) struct Attempt {
    pub(crate) hash: B256,
    /// 0 for the first send, then one more per replacement.
    pub(crate) attempt: i32,
    pub(crate) kind: AttemptKind,
    pub(crate) max_fee: u128,
    pub(crate) priority_fee: u128,
    pub(crate) raw: Vec<u8>,
    pub(crate) gas_limit: u64,
    /// Seconds since it was last sent (or signed, if never sent).
    pub(crate) age: f64,
}

/// A new batch to journal with its first attempt.
#[derive(Debug)]
pub(crate) struct NewBatch<'a> {
    pub(crate) nonce: u64,
    pub(crate) kind: BatchKind,
    pub(crate) urgent: bool,
    pub(crate) items: &'a [Candidate],
    /// The tips it settles after its items (`settleBatchWithTips`); empty for a `settleBatch`.
    pub(crate) tips: &'a [Tip],
    pub(crate) attempt: &'a Attempt,
}

/// What a mined receipt says about a batch.
#[derive(Debug)]
pub(crate) struct Mined {
    pub(crate) hash: B256,
    pub(crate) block: u64,
    pub(crate) gas_used: u64,
    /// Each item's outcome by (grant id, payee); empty for a self-transfer or a reverted settlement.
    pub(crate) outcomes: Vec<(B256, Address, Outcome)>,
    /// Each tip's outcome by (grant id, tip id); empty likewise.
    pub(crate) tip_outcomes: Vec<(B256, U256, Outcome)>,
}

/// The journal of one keeper account on one chain, written under the lease of one vault.
#[derive(Clone, Debug)]
pub(crate) struct Journal {
    pool: PgPool,
    chain_id: i64,
    sender: Address,
    keeper_id: String,
    /// The lease whose epoch fences every write.
    lease: LeaseKey,
}

type Write<'t, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 't>>;

impl Journal {
    pub(crate) fn new(db: &Db, lease: LeaseKey, sender: Address, keeper_id: String) -> Self {
        Self { pool: db.pool.clone(), chain_id: lease.chain_id as i64, sender, keeper_id, lease }
    }

    // ----- Reads -----

    /// The account's open batches, by ascending nonce.
    pub(crate) async fn open_batches(&self) -> Result<Vec<OpenBatch>> {
        type Row = (i64, i64, BatchStatus, BatchKind, Option<Vec<u8>>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, nonce, status, kind, confirmed_hash FROM keeper_batches
             WHERE chain_id = $1 AND sender = $2 AND status IN ('pending', 'broadcast', 'mined')
             ORDER BY nonce",
        )
        .bind(self.chain_id)
        .bind(self.sender.as_slice())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, nonce, status, kind, hash)| OpenBatch {
                id,
                nonce: nonce as u64,
                status,
                kind,
                mined_hash: hash.map(|h| B256::from_slice(&h)),
            })
            .collect())
    }

    /// Every signed transaction of `batch`, oldest first.
    pub(crate) async fn attempts(&self, batch: i64) -> Result<Vec<Attempt>> {
        type Row = (Vec<u8>, i32, AttemptKind, String, String, Vec<u8>, Option<i64>, f64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT hash, attempt, kind, max_fee_per_gas::text, max_priority_fee_per_gas::text, raw, gas_limit,
                    extract(epoch FROM now() - coalesce(broadcast_at, created_at))::float8
             FROM keeper_attempts WHERE batch_id = $1 ORDER BY attempt",
        )
        .bind(batch)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(hash, attempt, kind, max_fee, prio, raw, gas_limit, age)| Attempt {
                hash: B256::from_slice(&hash),
                attempt,
                kind,
                max_fee: max_fee.parse().unwrap_or_default(),
                priority_fee: prio.parse().unwrap_or_default(),
                raw,
                gas_limit: gas_limit.unwrap_or_default() as u64,
                age,
            })
            .collect())
    }

    /// The highest nonce of an open batch.
    pub(crate) async fn highest_open_nonce(&self) -> Result<Option<u64>> {
        let nonce: Option<i64> = sqlx::query_scalar(
            "SELECT max(nonce) FROM keeper_batches
             WHERE chain_id = $1 AND sender = $2 AND status IN ('pending', 'broadcast', 'mined')",
        )
        .bind(self.chain_id)
        .bind(self.sender.as_slice())
        .fetch_one(&self.pool)
        .await?;
        Ok(nonce.map(|n| n as u64))
    }

    /// Seconds since each settled item of `batch` was stored by the relay.
    pub(crate) async fn settled_latencies(&self, batch: i64) -> Result<Vec<f64>> {
        Ok(sqlx::query_scalar(
            "SELECT extract(epoch FROM now() - voucher_at)::float8 FROM keeper_batch_items
             WHERE batch_id = $1 AND outcome = $2",
        )
        .bind(batch)
        .bind(Outcome::Settled)
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many tips of `batch` settled.
    pub(crate) async fn settled_tips(&self, batch: i64) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM keeper_batch_tips WHERE batch_id = $1 AND outcome = $2",
        )
        .bind(batch)
        .bind(Outcome::Settled)
        .fetch_one(&self.pool)
        .await?;
        Ok(n as u64)
    }

    /// Seconds since the oldest open batch was journaled.
    pub(crate) async fn oldest_open_age(&self) -> Result<Option<f64>> {
        Ok(sqlx::query_scalar(
            "SELECT extract(epoch FROM now() - min(created_at))::float8 FROM keeper_batches
             WHERE chain_id = $1 AND sender = $2 AND status IN ('pending', 'broadcast', 'mined')",
        )
        .bind(self.chain_id)
        .bind(self.sender.as_slice())
        .fetch_one(&self.pool)
        .await?)
    }

    // ----- Writes, each fenced by the lease epoch -----

    /// Journals a batch, its items and its first signed transaction in one transaction; returns the batch's id.
    pub(crate) async fn insert_batch(&self, epoch: i64, batch: NewBatch<'_>) -> Result<i64> {
        let (chain_id, sender, keeper_id) = (self.chain_id, self.sender, self.keeper_id.clone());
        let NewBatch { nonce, kind, urgent, items, tips, attempt } = batch;
        let tip_grants: Vec<Vec<u8>> = tips.iter().map(|t| t.grant_id.to_vec()).collect();
        let tip_ids: Vec<String> = tips.iter().map(|t| t.tip_id.to_string()).collect();
        let tip_payees: Vec<Vec<u8>> = tips.iter().map(|t| t.payee.to_vec()).collect();
        let tip_listeners: Vec<Vec<u8>> = tips.iter().map(|t| t.grant.listener.to_vec()).collect();
        let tip_amounts: Vec<String> = tips.iter().map(|t| t.amount.to_string()).collect();
        let tipped_at: Vec<f64> = tips.iter().map(|t| t.tipped_at).collect();
        let gas_limit = attempt.gas_limit as i64;
        let grants: Vec<Vec<u8>> = items.iter().map(|c| c.grant_id.to_vec()).collect();
        let payees: Vec<Vec<u8>> = items.iter().map(|c| c.payee.to_vec()).collect();
        let cumulatives: Vec<String> = items.iter().map(|c| c.cumulative.to_string()).collect();
        let listeners: Vec<Vec<u8>> = items.iter().map(|c| c.grant.listener.to_vec()).collect();
        let values: Vec<String> = items.iter().map(|c| c.value.to_string()).collect();
        let voucher_at: Vec<f64> = items.iter().map(|c| c.voucher_at).collect();
        let attempt = attempt.clone();
        self.write(epoch, move |tx| {
            Box::pin(async move {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO keeper_batches (chain_id, sender, nonce, epoch, status, gas_limit, kind, keeper_id,
                                                 urgent)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                )
                .bind(chain_id)
                .bind(sender.as_slice())
                .bind(nonce as i64)
                .bind(epoch)
                .bind(BatchStatus::Pending)
                .bind(gas_limit)
                .bind(kind)
                .bind(keeper_id)
                .bind(urgent)
                .fetch_one(&mut **tx)
                .await?;
                sqlx::query(
                    "INSERT INTO keeper_batch_items (batch_id, grant_id, payee, cumulative, listener, value, voucher_at)
                     SELECT $1, g, p, c, l, v, to_timestamp(t)
                     FROM UNNEST($2::bytea[], $3::bytea[], $4::numeric[], $5::bytea[], $6::numeric[], $7::float8[])
                          AS x (g, p, c, l, v, t)",
                )
                .bind(id)
                .bind(grants)
                .bind(payees)
                .bind(cumulatives)
                .bind(listeners)
                .bind(values)
                .bind(voucher_at)
                .execute(&mut **tx)
                .await?;
                if !tip_grants.is_empty() {
                    sqlx::query(
                        "INSERT INTO keeper_batch_tips (batch_id, grant_id, tip_id, payee, listener, amount, tipped_at)
                         SELECT $1, g, t, p, l, a, to_timestamp(at)
                         FROM UNNEST($2::bytea[], $3::numeric[], $4::bytea[], $5::bytea[], $6::numeric[],
                                     $7::float8[]) AS x (g, t, p, l, a, at)",
                    )
                    .bind(id)
                    .bind(tip_grants)
                    .bind(tip_ids)
                    .bind(tip_payees)
                    .bind(tip_listeners)
                    .bind(tip_amounts)
                    .bind(tipped_at)
                    .execute(&mut **tx)
                    .await?;
                }
                store_attempt(tx, id, &attempt).await?;
                Ok(id)
            })
        })
        .await
    }

    /// Journals another signed transaction of `batch` (a fee bump or the self-transfer that frees its nonce).
    pub(crate) async fn insert_attempt(
        &self,
        epoch: i64,
        batch: i64,
        attempt: &Attempt,
    ) -> Result<()> {
        let attempt = attempt.clone();
        self.write(epoch, move |tx| {
            Box::pin(async move { store_attempt(tx, batch, &attempt).await })
        })
        .await
    }

    /// Records that `hash` was sent; a `pending` batch becomes `broadcast`.
    pub(crate) async fn mark_broadcast(&self, epoch: i64, batch: i64, hash: B256) -> Result<()> {
        self.write(epoch, move |tx| {
            Box::pin(async move {
                sqlx::query("UPDATE keeper_attempts SET broadcast_at = now() WHERE hash = $1")
                    .bind(hash.as_slice())
                    .execute(&mut **tx)
                    .await?;
                sqlx::query(
                    "UPDATE keeper_batches SET status = $2, updated_at = now() WHERE id = $1 AND status = $3",
                )
                .bind(batch)
                .bind(BatchStatus::Broadcast)
                .bind(BatchStatus::Pending)
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// A `mined` batch whose receipt is gone (a reorg): back to `broadcast`, its outcomes forgotten.
    pub(crate) async fn record_reorged(&self, epoch: i64, batch: i64) -> Result<()> {
        self.write(epoch, move |tx| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE keeper_batches SET status = $2, reorgs = reorgs + 1, confirmed_hash = NULL,
                            confirmed_block = NULL, gas_used = NULL, settled_count = NULL, mined_at = NULL,
                            updated_at = now()
                     WHERE id = $1",
                )
                .bind(batch)
                .bind(BatchStatus::Broadcast)
                .execute(&mut **tx)
                .await?;
                sqlx::query("UPDATE keeper_batch_items SET outcome = NULL WHERE batch_id = $1")
                    .bind(batch)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query("UPDATE keeper_batch_tips SET outcome = NULL WHERE batch_id = $1")
                    .bind(batch)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Records `batch` as `mined` by `mined.hash`, with each item's outcome.
    pub(crate) async fn record_mined(&self, epoch: i64, batch: i64, mined: Mined) -> Result<()> {
        let Mined { hash, block, gas_used, outcomes, tip_outcomes } = mined;
        let mut tip_grants = Vec::with_capacity(tip_outcomes.len());
        let mut tip_ids = Vec::with_capacity(tip_outcomes.len());
        let mut tip_results = Vec::with_capacity(tip_outcomes.len());
        for (grant, tip_id, outcome) in tip_outcomes {
            tip_grants.push(grant.to_vec());
            tip_ids.push(tip_id.to_string());
            tip_results.push(outcome);
        }
        let settled = outcomes.iter().filter(|o| o.2 == Outcome::Settled).count() as i32;
        let mut grants = Vec::with_capacity(outcomes.len());
        let mut payees = Vec::with_capacity(outcomes.len());
        let mut results = Vec::with_capacity(outcomes.len());
        for (grant, payee, outcome) in outcomes {
            grants.push(grant.to_vec());
            payees.push(payee.to_vec());
            results.push(outcome);
        }
        self.write(epoch, move |tx| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE keeper_batches SET status = $2, confirmed_hash = $3, confirmed_block = $4,
                            gas_used = $5, settled_count = $6, mined_at = now(), updated_at = now()
                     WHERE id = $1",
                )
                .bind(batch)
                .bind(BatchStatus::Mined)
                .bind(hash.as_slice())
                .bind(block as i64)
                .bind(gas_used as i64)
                .bind(settled)
                .execute(&mut **tx)
                .await?;
                sqlx::query(
                    "UPDATE keeper_batch_items i SET outcome = o.outcome
                     FROM UNNEST($2::bytea[], $3::bytea[], $4::text[]) AS o (grant_id, payee, outcome)
                     WHERE i.batch_id = $1 AND i.grant_id = o.grant_id AND i.payee = o.payee",
                )
                .bind(batch)
                .bind(grants)
                .bind(payees)
                .bind(results)
                .execute(&mut **tx)
                .await?;
                sqlx::query(
                    "UPDATE keeper_batch_tips i SET outcome = o.outcome
                     FROM UNNEST($2::bytea[], $3::numeric[], $4::text[]) AS o (grant_id, tip_id, outcome)
                     WHERE i.batch_id = $1 AND i.grant_id = o.grant_id AND i.tip_id = o.tip_id",
                )
                .bind(batch)
                .bind(tip_grants)
                .bind(tip_ids)
                .bind(tip_results)
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Ends a mined batch deep enough: `confirmed`, `failed` (reverted) or `cancelled` (its nonce freed).
    pub(crate) async fn record_confirmed(
        &self,
        epoch: i64,
        batch: i64,
        status: BatchStatus,
    ) -> Result<()> {
        self.write(epoch, move |tx| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE keeper_batches SET status = $2, confirmed_at = now(), updated_at = now(),
                            error = CASE WHEN $3 THEN 'settleBatch reverted' ELSE error END
                     WHERE id = $1",
                )
                .bind(batch)
                .bind(status)
                .bind(status == BatchStatus::Failed)
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Closes a batch that will never be mined; its vouchers become claimable again.
    pub(crate) async fn record_ended(
        &self,
        epoch: i64,
        batch: i64,
        status: BatchStatus,
        why: &'static str,
    ) -> Result<()> {
        self.write(epoch, move |tx| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE keeper_batches SET status = $2, error = $3, updated_at = now() WHERE id = $1",
                )
                .bind(batch)
                .bind(status)
                .bind(why)
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Runs `f` in a transaction that first checks this keeper still holds lease `epoch` of its chain and vault
    /// (and keeps that lease row shared-locked, so a takeover waits for the write to finish).
    async fn write<T, F>(&self, epoch: i64, f: F) -> Result<T>
    where
        F: for<'t> FnOnce(&'t mut Transaction<'static, Postgres>) -> Write<'t, T>,
    {
        let mut tx = self.pool.begin().await?;
        let (chain_id, vault) = self.lease.columns();
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT epoch FROM keeper_lease WHERE chain_id = $1 AND vault = $2 FOR SHARE",
        )
        .bind(chain_id)
        .bind(vault)
        .fetch_optional(&mut *tx)
        .await?;
        if current != Some(epoch) {
            return Err(Error::LostLease(epoch));
        }
        let out = f(&mut tx).await?;
        tx.commit().await?;
        Ok(out)
    }
}

/// Journals one signed transaction of batch `batch`.
async fn store_attempt(
    tx: &mut Transaction<'static, Postgres>,
    batch: i64,
    attempt: &Attempt,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO keeper_attempts (hash, batch_id, attempt, max_fee_per_gas, max_priority_fee_per_gas, raw, kind,
                                      gas_limit)
         VALUES ($1, $2, $3, $4::numeric, $5::numeric, $6, $7, $8)",
    )
    .bind(attempt.hash.as_slice())
    .bind(batch)
    .bind(attempt.attempt)
    .bind(attempt.max_fee.to_string())
    .bind(attempt.priority_fee.to_string())
    .bind(&attempt.raw)
    .bind(attempt.kind)
    .bind(attempt.gas_limit as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{Bytes, U256};
    use beatstream_primitives::contracts::BeatStreamVault::SessionGrant;
    use beatstream_primitives::db::DatabaseArgs;
    use beatstream_testkit::TestDb;

    use super::*;
    use crate::db::{lease::LockConnection, types::SkipReason};

    fn attempt(n: u8, kind: AttemptKind) -> Attempt {
        Attempt {
            hash: B256::repeat_byte(n),
            attempt: n.into(),
            kind,
            max_fee: 2_000_000_000,
            priority_fee: 1_000_000_000,
            raw: vec![n; 8],
            gas_limit: 100_000,
            age: 0.0,
        }
    }

    fn voucher(payee: u8) -> Candidate {
        Candidate {
            grant_id: B256::repeat_byte(9),
            grant: SessionGrant {
                listener: Address::repeat_byte(8),
                sessionKey: Address::ZERO,
                cap: U256::MAX,
                expiresAt: 0,
                nonce: 0,
            },
            grant_signature: Bytes::new(),
            registered: true,
            payee: Address::repeat_byte(payee),
            cumulative: U256::from(1_000),
            signature: Bytes::new(),
            value: U256::from(1_000),
            voucher_at: 1.0,
            urgent: false,
            wallet: false,
            split_size: 0,
        }
    }

    /// The journal's states come back as written, and a keeper whose lease epoch moved on writes nothing.
    #[tokio::test]
    async fn states_round_trip_and_a_stale_epoch_writes_nothing() -> eyre::Result<()> {
        let test_db = TestDb::new().await?;
        let db = Db::connect(&DatabaseArgs::new(test_db.url())).await?;
        let mut lock = LockConnection::open(&DatabaseArgs::new(test_db.url())).await?;
        let key = LeaseKey::new(31337, Address::repeat_byte(6));
        let epoch = lock.take_lease(key, "first", std::time::Duration::from_secs(60)).await?;
        let journal = Journal::new(&db, key, Address::repeat_byte(7), "first".into());

        let items = [voucher(1), voucher(2)];
        let first = attempt(1, AttemptKind::Settle);
        let batch = NewBatch {
            nonce: 5,
            kind: BatchKind::Settle,
            urgent: false,
            items: &items,
            tips: &[],
            attempt: &first,
        };
        let id = journal.insert_batch(epoch, batch).await?;
        let open = journal.open_batches().await?;
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].id, open[0].nonce), (id, 5));
        assert_eq!((open[0].status, open[0].kind), (BatchStatus::Pending, BatchKind::Settle));
        journal.mark_broadcast(epoch, id, first.hash).await?;
        assert_eq!(journal.open_batches().await?[0].status, BatchStatus::Broadcast);
        journal.insert_attempt(epoch, id, &attempt(2, AttemptKind::Cancel)).await?;
        let kinds: Vec<_> = journal.attempts(id).await?.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [AttemptKind::Settle, AttemptKind::Cancel]);

        let outcomes = vec![
            (items[0].grant_id, items[0].payee, Outcome::Settled),
            (items[1].grant_id, items[1].payee, Outcome::Skipped(SkipReason::GrantRevoked)),
        ];
        let mined =
            Mined { hash: first.hash, block: 10, gas_used: 50_000, outcomes, tip_outcomes: vec![] };
        journal.record_mined(epoch, id, mined).await?;
        let stored: Vec<Outcome> = sqlx::query_scalar(
            "SELECT outcome FROM keeper_batch_items WHERE batch_id = $1 ORDER BY payee",
        )
        .bind(id)
        .fetch_all(&db.pool)
        .await?;
        assert_eq!(stored, [Outcome::Settled, Outcome::Skipped(SkipReason::GrantRevoked)]);
        let text: Vec<String> = sqlx::query_scalar(
            "SELECT outcome FROM keeper_batch_items WHERE batch_id = $1 ORDER BY payee",
        )
        .bind(id)
        .fetch_all(&db.pool)
        .await?;
        assert_eq!(text, ["settled", "skipped:grant_revoked"]);
        assert_eq!(journal.settled_latencies(id).await?.len(), 1);
        assert_eq!(journal.open_batches().await?[0].mined_hash, Some(first.hash));

        // The keepers of another vault, and of the same vault on another chain, take their leases (twice): they
        // are other rows, so this journal's epoch still holds.
        let mut elsewhere = LockConnection::open(&DatabaseArgs::new(test_db.url())).await?;
        for other_key in
            [LeaseKey::new(31337, Address::repeat_byte(5)), LeaseKey::new(1, key.vault)]
        {
            for _ in 0..2 {
                elsewhere
                    .take_lease(other_key, "elsewhere", std::time::Duration::from_secs(60))
                    .await?;
            }
        }
        journal.insert_attempt(epoch, id, &attempt(4, AttemptKind::Cancel)).await?;
        elsewhere.close().await;

        // Another keeper of this vault takes the lease: every write under the old epoch fails and changes nothing.
        let mut other = LockConnection::open(&DatabaseArgs::new(test_db.url())).await?;
        let next = other.take_lease(key, "second", std::time::Duration::from_secs(60)).await?;
        assert!(next > epoch);
        let stale = journal.record_confirmed(epoch, id, BatchStatus::Confirmed).await;
        assert!(matches!(stale, Err(Error::LostLease(e)) if e == epoch), "{stale:?}");
        let second = attempt(3, AttemptKind::Settle);
        let batch = NewBatch {
            nonce: 6,
            kind: BatchKind::Noop,
            urgent: false,
            items: &[],
            tips: &[],
            attempt: &second,
        };
        assert!(matches!(journal.insert_batch(epoch, batch).await, Err(Error::LostLease(_))));
        let stale = journal.insert_attempt(epoch, id, &attempt(5, AttemptKind::Cancel)).await;
        assert!(matches!(stale, Err(Error::LostLease(_))), "{stale:?}");
        assert_eq!(journal.attempts(id).await?.len(), 3);
        let batches: i64 =
            sqlx::query_scalar("SELECT count(*) FROM keeper_batches").fetch_one(&db.pool).await?;
        assert_eq!(batches, 1);
        let open = journal.open_batches().await?;
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].status, BatchStatus::Mined);

        // The new leader's writes go through.
        journal.record_confirmed(next, id, BatchStatus::Confirmed).await?;
        assert!(journal.open_batches().await?.is_empty());
        let status: BatchStatus =
            sqlx::query_scalar("SELECT status FROM keeper_batches WHERE id = $1")
                .bind(id)
                .fetch_one(&db.pool)
                .await?;
        assert_eq!(status, BatchStatus::Confirmed);
        db.close().await;
        lock.close().await;
        other.close().await;
        Ok(())
    }
}
