//! Postgres `LISTEN` behind the subscriptions.
//!
//! One connection listens on the indexer's and the relay's channels and fans out a [`Change`] per notification on
//! a broadcast channel. When that connection is lost, every subscriber gets [`Change::Reload`] once it is back, and
//! re-reads what it shows: nothing that happened while the API was not listening is missed, and no subscriber stays
//! silently stale. New settlements are read once per notification for all subscribers, after a cursor.

use std::time::Duration;

use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// What changed.
#[derive(Clone, Debug)]
pub(crate) enum Change {
    /// New settlements, in chain order (the indexer's `beatstream_settlements`).
    Settlements(std::sync::Arc<Vec<SettlementEvent>>),
    /// Payee earnings changed (`beatstream_earnings`).
    Earnings,
    /// The relay stored vouchers or session changes (`beatstream_vouchers`).
    Vouchers,
    /// The listening connection was lost and is back, or a reorg rolled state back: re-read everything.
    Reload,
}

/// A settlement as the hub reads it: enough to filter by artist or listener; subscribers load the rest.
#[derive(Clone, Debug)]
pub(crate) struct SettlementEvent {
    pub(crate) listener: Vec<u8>,
    pub(crate) payee: Vec<u8>,
}

/// Channels the hub listens on.
pub(crate) const CHANNELS: [&str; 4] =
    ["beatstream_settlements", "beatstream_earnings", "beatstream_vouchers", "beatstream_reorg"];

/// The fan-out point of notifications.
#[derive(Clone, Debug)]
pub(crate) struct Hub {
    tx: broadcast::Sender<Change>,
}

impl Hub {
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }

    /// Starts listening; runs until `shutdown`.
    pub(crate) fn spawn(pool: PgPool, chain_id: i64, shutdown: CancellationToken) -> Self {
        let (tx, _) = broadcast::channel(1024);
        let hub = Self { tx: tx.clone() };
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = listen(pool, chain_id, tx) => {}
            }
        });
        hub
    }
}

async fn listen(pool: PgPool, chain_id: i64, tx: broadcast::Sender<Change>) {
    let mut cursor = latest(&pool, chain_id).await.unwrap_or((-1, -1));
    loop {
        let mut listener = match connect(&pool).await {
            Ok(l) => l,
            Err(e) => {
                warn!(target: "beatstream::api", error = %e, "cannot LISTEN; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        info!(target: "beatstream::api", "listening for changes");
        // Whatever happened while not listening.
        let _ = tx.send(Change::Reload);
        fan_out_settlements(&pool, chain_id, &mut cursor, &tx).await;
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => match n.channel() {
                    "beatstream_settlements" => {
                        fan_out_settlements(&pool, chain_id, &mut cursor, &tx).await;
                    }
                    "beatstream_earnings" => {
                        let _ = tx.send(Change::Earnings);
                    }
                    "beatstream_vouchers" => {
                        let _ = tx.send(Change::Vouchers);
                    }
                    "beatstream_reorg" => {
                        // Settlements above the common ancestor are gone; re-read from there.
                        let ancestor = serde_json::from_str::<serde_json::Value>(n.payload())
                            .ok()
                            .and_then(|v| v["ancestor"].as_i64());
                        if let Some(ancestor) = ancestor {
                            cursor = cursor.min((ancestor, i64::from(i32::MAX)));
                        }
                        let _ = tx.send(Change::Reload);
                    }
                    _ => {}
                },
                Ok(None) => {
                    warn!(target: "beatstream::api", "lost the LISTEN connection; reconnecting");
                    break;
                }
                Err(e) => {
                    warn!(target: "beatstream::api", error = %e, "LISTEN failed; reconnecting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
        }
    }
}

async fn connect(pool: &PgPool) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    sqlx::query("SET application_name = 'beatstream-api-listen'").execute(&mut listener).await?;
    listener.listen_all(CHANNELS).await?;
    Ok(listener)
}

async fn latest(pool: &PgPool, chain_id: i64) -> sqlx::Result<(i64, i64)> {
    let row: Option<(i64, i32)> = sqlx::query_as(
        "SELECT block_number, log_index FROM vault_settlements WHERE chain_id = $1
         ORDER BY block_number DESC, log_index DESC LIMIT 1",
    )
    .bind(chain_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map_or((-1, -1), |(b, l)| (b, i64::from(l))))
}

async fn fan_out_settlements(
    pool: &PgPool,
    chain_id: i64,
    cursor: &mut (i64, i64),
    tx: &broadcast::Sender<Change>,
) {
    loop {
        type Row = (i64, i32, Vec<u8>, Vec<u8>);
        let rows: Result<Vec<Row>, _> = sqlx::query_as(
            "SELECT block_number, log_index, listener, payee FROM vault_settlements
             WHERE chain_id = $1 AND (block_number, log_index) > ($2, $3::int4)
             ORDER BY block_number, log_index LIMIT 1000",
        )
        .bind(chain_id)
        .bind(cursor.0)
        .bind(cursor.1.min(i64::from(i32::MAX)) as i32)
        .fetch_all(pool)
        .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                warn!(target: "beatstream::api", error = %e, "reading new settlements failed");
                return;
            }
        };
        let full = rows.len() == 1000;
        if let Some(last) = rows.last() {
            *cursor = (last.0, i64::from(last.1));
        }
        if !rows.is_empty() {
            let events = rows
                .into_iter()
                .map(|(_, _, listener, payee)| SettlementEvent { listener, payee })
                .collect();
            let _ = tx.send(Change::Settlements(std::sync::Arc::new(events)));
        }
        if !full {
            return;
        }
    }
}
