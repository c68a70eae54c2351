//! One active keeper: a Postgres advisory lock held on a dedicated connection, plus a lease row whose epoch every
//! journal write checks.
//!
//! The lock makes takeover fast when a leader dies (Postgres releases it with the connection). The epoch fences a
//! leader that lost the lock without noticing (a hung process, a partition): once a standby has bumped the epoch,
//! the old leader's next journal write fails, so it can broadcast nothing new. A leader that holds the lock but let
//! its lease lapse is ended by the standby (`pg_terminate_backend` of its lock connection). The vault's idempotence
//! is the last fence: two keepers at once can waste gas but never pay twice.

use std::time::Duration;

use alloy::primitives::Address;
use tracing::{info, warn};

use beatstream_primitives::db::DatabaseArgs;

use crate::{
    Result,
    db::{LeaseKey, LockConnection},
};

/// The leader election of the keepers of one vault.
pub(crate) struct Leader {
    database: DatabaseArgs,
    keeper_id: String,
    /// The chain and vault: the advisory lock's key and the lease row's.
    key: LeaseKey,
    lease: Duration,
    /// The standby's connection, used to try the lock; moved into the renewer once the lock is taken.
    conn: Option<LockConnection>,
    held: Option<Held>,
}

/// Leadership held: the renewer task owns the lock connection and renews the lease a few times per lease period.
struct Held {
    epoch: i64,
    lost: tokio::sync::watch::Receiver<bool>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Leader {
    pub(crate) fn new(
        database: DatabaseArgs,
        keeper_id: String,
        chain_id: u64,
        vault: Address,
        lease: Duration,
    ) -> Self {
        let key = LeaseKey::new(chain_id, vault);
        Self { database, keeper_id, key, lease, conn: None, held: None }
    }

    /// The epoch this keeper leads under; `None` while another keeper leads.
    pub(crate) async fn ensure(&mut self) -> Result<Option<i64>> {
        if let Some(held) = &self.held {
            if !*held.lost.borrow() && !held.renewer.is_finished() {
                return Ok(Some(held.epoch));
            }
            warn!(target: "beatstream::keeper", epoch = held.epoch, "lost the lease; standing by");
            self.step_down();
        }
        match self.try_acquire().await {
            Ok(epoch) => Ok(epoch),
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    async fn try_acquire(&mut self) -> Result<Option<i64>> {
        if self.conn.is_none() {
            self.conn = Some(LockConnection::open(&self.database).await?);
        }
        let conn = self.conn.as_mut().expect("just set");
        if !conn.try_lock(self.key.lock_key()).await? {
            // The leader holds the lock. If it stopped renewing its lease, end its lock connection.
            if let Some((pid, holder)) = conn.lapsed_leader(self.key).await? {
                warn!(target: "beatstream::keeper", %holder, pid, "the leader's lease lapsed; ending its lock connection");
                conn.terminate(pid).await?;
            }
            return Ok(None);
        }
        let epoch = conn.take_lease(self.key, &self.keeper_id, self.lease).await?;
        info!(target: "beatstream::keeper", keeper_id = %self.keeper_id, epoch, "became the active keeper");

        let conn = self.conn.take().expect("connected above");
        let (tx, lost) = tokio::sync::watch::channel(false);
        let renewer = tokio::spawn(renew(conn, self.key, epoch, self.lease, tx));
        self.held = Some(Held { epoch, lost, renewer });
        Ok(Some(epoch))
    }

    /// Gives up leadership: the renewer stops and its connection closes, which releases the lock.
    pub(crate) fn step_down(&mut self) {
        if let Some(held) = self.held.take() {
            held.renewer.abort();
        }
    }
}

/// Renews the lease three times per lease period on the lock connection until that fails or the epoch moved on.
async fn renew(
    mut conn: LockConnection,
    key: LeaseKey,
    epoch: i64,
    lease: Duration,
    lost: tokio::sync::watch::Sender<bool>,
) {
    loop {
        tokio::time::sleep(lease / 3).await;
        match conn.renew(key, epoch, lease).await {
            Ok(true) => {}
            Ok(false) => {
                warn!(target: "beatstream::keeper", epoch, "the lease moved to another keeper");
                break;
            }
            Err(e) => {
                warn!(target: "beatstream::keeper", epoch, error = %e, "renewing the lease failed");
                break;
            }
        }
    }
    let _ = lost.send(true);
    conn.close().await;
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.step_down();
    }
}
