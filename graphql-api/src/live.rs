//! Postgres `LISTEN` behind the subscriptions.
//!
//! One connection listens on the indexer's and the relay's channels and fans out a [`Change`] per notification on
//! a broadcast channel. When that connection is lost, every subscriber gets [`Change::Reload`] once it is back, and
//! re-reads what it shows: nothing that happened while the API was not listening is missed, and no subscriber stays
//! silently stale. New settlements are read once per notification for all subscribers, after a cursor.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::db::{self, Db};

/// What changed.
#[derive(Clone, Debug)]
pub(crate) enum Change {
    /// New settlements, in chain order (the indexer's `beatstream_settlements`).
    Settlements(std::sync::Arc<Vec<SettlementEvent>>),
    /// Payee earnings changed (`beatstream_earnings`).
    Earnings,
    /// The relay stored vouchers or session changes (`beatstream_vouchers`).
    Vouchers,
    /// New settled tips (`beatstream_tips`).
    Tips,
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
pub(crate) const CHANNELS: [&str; 5] = [
    "beatstream_settlements",
    "beatstream_earnings",
    "beatstream_vouchers",
    "beatstream_tips",
    "beatstream_reorg",
];

/// The fan-out point of notifications.
#[derive(Clone, Debug)]
pub(crate) struct Hub {
    tx: broadcast::Sender<Change>,
    /// Whether the `LISTEN` connection is up (the `listen` check of `/ready`).
    listening: Arc<AtomicBool>,
    /// Whether the hub's task still runs (`/health`); it ends only at shutdown, or by a panic.
    running: Arc<AtomicBool>,
}

/// Clears a flag when dropped: when the hub's task ends, however it ends.
struct Clear(Arc<AtomicBool>);

impl Drop for Clear {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl Hub {
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }

    /// Whether the `LISTEN` connection is up.
    pub(crate) fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    /// Whether the hub's task still runs.
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Starts listening; runs until `shutdown`.
    pub(crate) fn spawn(db: Db, shutdown: CancellationToken) -> Self {
        let (tx, _) = broadcast::channel(1024);
        let listening = Arc::new(AtomicBool::new(false));
        let running = Arc::new(AtomicBool::new(true));
        let hub = Self { tx: tx.clone(), listening: listening.clone(), running: running.clone() };
        tokio::spawn(async move {
            let _running = Clear(running);
            let _listening = Clear(listening.clone());
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = listen(db, tx, &listening) => {}
            }
        });
        hub
    }
}

async fn listen(db: Db, tx: broadcast::Sender<Change>, listening: &AtomicBool) {
    let mut cursor = db::notify::newest_settlement(&db).await.unwrap_or((-1, -1));
    loop {
        let mut listener = match db::notify::listen(&db, &CHANNELS).await {
            Ok(l) => l,
            Err(e) => {
                warn!(target: "beatstream::api", error = %e, "cannot LISTEN; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        info!(target: "beatstream::api", "listening for changes");
        listening.store(true, Ordering::Relaxed);
        if let Err(e) = listener.catch_up(&db).await {
            warn!(target: "beatstream::api", error = %e, "waiting for the replica failed");
        }
        // Whatever happened while not listening.
        let _ = tx.send(Change::Reload);
        fan_out_settlements(&db, &mut cursor, &tx).await;
        loop {
            let received = match listener.recv().await {
                Ok(Some(n)) => listener.catch_up(&db).await.map(|()| Some(n)),
                other => other,
            };
            match received {
                Ok(Some(n)) => match n.channel.as_str() {
                    "beatstream_settlements" => {
                        fan_out_settlements(&db, &mut cursor, &tx).await;
                    }
                    "beatstream_earnings" => {
                        let _ = tx.send(Change::Earnings);
                    }
                    "beatstream_vouchers" => {
                        let _ = tx.send(Change::Vouchers);
                    }
                    "beatstream_tips" => {
                        let _ = tx.send(Change::Tips);
                    }
                    "beatstream_reorg" => {
                        // Settlements above the common ancestor are gone; re-read from there.
                        let ancestor = serde_json::from_str::<serde_json::Value>(&n.payload)
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
                    listening.store(false, Ordering::Relaxed);
                    warn!(target: "beatstream::api", "lost the LISTEN connection; reconnecting");
                    break;
                }
                Err(e) => {
                    listening.store(false, Ordering::Relaxed);
                    warn!(target: "beatstream::api", error = %e, "LISTEN failed; reconnecting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
        }
    }
}

async fn fan_out_settlements(db: &Db, cursor: &mut (i64, i64), tx: &broadcast::Sender<Change>) {
    loop {
        let rows = match db::notify::settlements_after(db, *cursor, 1000).await {
            Ok(rows) => rows,
            Err(e) => {
                warn!(target: "beatstream::api", error = %e, "reading new settlements failed");
                return;
            }
        };
        let full = rows.len() == 1000;
        if let Some(last) = rows.last() {
            *cursor = (last.block_number, last.log_index);
        }
        if !rows.is_empty() {
            let events = rows
                .into_iter()
                .map(|r| SettlementEvent { listener: r.listener, payee: r.payee })
                .collect();
            let _ = tx.send(Change::Settlements(std::sync::Arc::new(events)));
        }
        if !full {
            return;
        }
    }
}
