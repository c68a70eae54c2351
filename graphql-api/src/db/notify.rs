//! What the subscription hub reads: Postgres notifications and the positions of new settlements.

use sqlx::postgres::PgListener;

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

/// Opens a connection of its own that listens on `channels`.
pub(crate) async fn listen(db: &Db, channels: &[&str]) -> Result<Notifications> {
    let mut listener = PgListener::connect_with(&db.pool).await?;
    sqlx::query("SET application_name = 'beatstream-api-listen'").execute(&mut listener).await?;
    listener.listen_all(channels.iter().copied()).await?;
    Ok(Notifications(listener))
}

impl Notifications {
    /// The next notification, or `None` when the connection was lost (listen again).
    pub(crate) async fn recv(&mut self) -> Result<Option<Notification>> {
        Ok(self.0.try_recv().await?.map(|n| Notification {
            channel: n.channel().to_owned(),
            payload: n.payload().to_owned(),
        }))
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
    .fetch_optional(&db.pool)
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
    .fetch_all(&db.pool)
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
