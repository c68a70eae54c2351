//! What the subscription hub reads: Postgres notifications and the positions of new settlements.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::time::Instant;
use tracing::warn;

use super::pool::Db;
use crate::Result;

/// A connection `LISTEN`ing on some channels.
pub(crate) struct Notifications(PgListener);

/// One notification.
#[derive(Clone, Debug)]
pub(crate) struct Notification {
    pub(crate) channel: String,
    pub(crate) payload: String,
}

/// Opens a connection of its own (on `--session-database-url`) that listens on `channels`.
pub(crate) async fn listen(db: &Db, channels: &[&str]) -> Result<Notifications> {
    let mut listener = PgListener::connect_with(&db.session).await?;
    listener.listen_all(channels.iter().copied()).await?;
    Ok(Notifications(listener))
}

/// How long a read after a notification waits for a lagging replica before going ahead anyway.
const REPLICA_WAIT: Duration = Duration::from_secs(10);

impl Notifications {
    /// The next notification, or `None` when the connection was lost (listen again).
    pub(crate) async fn recv(&mut self) -> Result<Option<Notification>> {
        Ok(self.0.try_recv().await?.map(|n| Notification {
            channel: n.channel().to_owned(),
            payload: n.payload().to_owned(),
        }))
    }

    /// On a replica, waits until it has replayed everything the primary (this connection's server) had written
    /// by now (its WAL insert position, which is past every commit notified so far even with `synchronous_commit`
    /// off), so a read prompted by a notification sees what was notified. Returns at once on a primary; after
    /// [`REPLICA_WAIT`] it gives up with a warning rather than stall every subscriber.
    pub(crate) async fn catch_up(&mut self, db: &Db) -> Result<()> {
        if !db.replica {
            return Ok(());
        }
        let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
            .fetch_one(&mut self.0)
            .await?;
        let deadline = Instant::now() + REPLICA_WAIT;
        loop {
            let replayed: Option<bool> =
                sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn")
                    .bind(&lsn)
                    .fetch_one(&mut *db.reader().await?)
                    .await?;
            if replayed == Some(true) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                warn!(target: "beatstream::api", %lsn, "the replica is more than 10 s behind the primary; reading anyway");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A settlement's position in the chain, and its listener and payee.
#[derive(Clone, Debug)]
pub(crate) struct SettlementAt {
    pub(crate) block_number: i64,
    pub(crate) log_index: i64,
    pub(crate) listener: Vec<u8>,
    pub(crate) payee: Vec<u8>,
}

/// The position of the newest settlement, or `(-1, -1)` before the first.
pub(crate) async fn newest_settlement(db: &Db) -> Result<(i64, i64)> {
    let row: Option<(i64, i32)> = sqlx::query_as(
        "SELECT block_number, log_index FROM vault_settlements WHERE chain_id = $1
         ORDER BY block_number DESC, log_index DESC LIMIT 1",
    )
    .bind(db.chain_id)
    .fetch_optional(&mut *db.reader().await?)
    .await?;
    Ok(row.map_or((-1, -1), |(b, l)| (b, i64::from(l))))
}

/// Up to `limit` settlements after position `after`, in chain order.
pub(crate) async fn settlements_after(
    db: &Db,
    after: (i64, i64),
    limit: i64,
) -> Result<Vec<SettlementAt>> {
    let rows: Vec<(i64, i32, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT block_number, log_index, listener, payee FROM vault_settlements
         WHERE chain_id = $1 AND (block_number, log_index) > ($2, $3::int4)
         ORDER BY block_number, log_index LIMIT $4",
    )
    .bind(db.chain_id)
    .bind(after.0)
    .bind(after.1.min(i64::from(i32::MAX)) as i32)
    .bind(limit)
    .fetch_all(&mut *db.reader().await?)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(block_number, log_index, listener, payee)| SettlementAt {
            block_number,
            log_index: i64::from(log_index),
            listener,
            payee,
        })
        .collect())
}
