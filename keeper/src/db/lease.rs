//! The lease's SQL: a Postgres advisory lock held on a dedicated connection, and the `keeper_lease` row whose epoch
//! every journal write checks. Both are keyed by [`LeaseKey`] (chain id and vault), so the keepers of different
//! vaults on one database elect and fence independently. The election around it is `crate::leader`.

use std::time::Duration;

use alloy::primitives::{Address, keccak256};
use beatstream_primitives::db::DatabaseArgs;
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::{Error, Result};

/// What one election is about: the keepers of one vault on one chain. It keys the advisory lock and the lease row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LeaseKey {
    pub(crate) chain_id: u64,
    pub(crate) vault: Address,
}

impl LeaseKey {
    pub(crate) const fn new(chain_id: u64, vault: Address) -> Self {
        Self { chain_id, vault }
    }

    /// The advisory lock's key: the first 8 bytes of keccak256("beatstream-keeper" ++ chain id ++ vault).
    pub(crate) fn lock_key(&self) -> i64 {
        let mut seed = b"beatstream-keeper".to_vec();
        seed.extend_from_slice(&self.chain_id.to_be_bytes());
        seed.extend_from_slice(self.vault.as_slice());
        i64::from_be_bytes(keccak256(seed)[..8].try_into().expect("8 bytes"))
    }

    /// The lease row's key columns, as bound to SQL.
    pub(crate) fn columns(&self) -> (i64, Vec<u8>) {
        (self.chain_id as i64, self.vault.to_vec())
    }
}

/// The dedicated connection that tries, holds and renews the lock. Closing it releases the lock.
#[derive(Debug)]
pub(crate) struct LockConnection {
    conn: PgConnection,
}

impl LockConnection {
    /// Opens a connection to `--session-database-url` (a session of its own: the lock lives as long as it)
    /// named `beatstream-keeper-lock`, so an operator can find it in `pg_stat_activity`.
    pub(crate) async fn open(database: &DatabaseArgs) -> Result<Self> {
        let options = database
            .session_options()
            .map_err(|e| Error::Config(e.to_string()))?
            .application_name("beatstream-keeper-lock");
        Ok(Self { conn: options.connect().await? })
    }

    /// Tries the advisory lock `key` without waiting.
    pub(crate) async fn try_lock(&mut self, key: i64) -> Result<bool> {
        Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut self.conn)
            .await?)
    }

    /// The backend pid and name of `key`'s leader whose lease has expired, if it has.
    pub(crate) async fn lapsed_leader(&mut self, key: LeaseKey) -> Result<Option<(i32, String)>> {
        let (chain_id, vault) = key.columns();
        let stale: Option<(Option<i32>, String)> = sqlx::query_as(
            "SELECT backend_pid, holder FROM keeper_lease
             WHERE chain_id = $1 AND vault = $2 AND expires_at < now()",
        )
        .bind(chain_id)
        .bind(vault)
        .fetch_optional(&mut self.conn)
        .await?;
        Ok(stale.and_then(|(pid, holder)| Some((pid?, holder))))
    }

    /// Ends another backend's connection (the lapsed leader's lock connection), which releases its lock.
    pub(crate) async fn terminate(&mut self, pid: i32) -> Result<()> {
        sqlx::query("SELECT pg_terminate_backend($1)").bind(pid).execute(&mut self.conn).await?;
        Ok(())
    }

    /// Takes `key`'s lease for `holder` on this connection, for `lease`; returns the new epoch.
    pub(crate) async fn take_lease(
        &mut self,
        key: LeaseKey,
        holder: &str,
        lease: Duration,
    ) -> Result<i64> {
        let (chain_id, vault) = key.columns();
        Ok(sqlx::query_scalar(
            "INSERT INTO keeper_lease (chain_id, vault, holder, epoch, expires_at, backend_pid)
             VALUES ($3, $4, $1, 1, now() + make_interval(secs => $2), pg_backend_pid())
             ON CONFLICT (chain_id, vault) DO UPDATE
                SET holder = $1, epoch = keeper_lease.epoch + 1,
                    expires_at = now() + make_interval(secs => $2), backend_pid = pg_backend_pid()
             RETURNING epoch",
        )
        .bind(holder)
        .bind(lease.as_secs_f64())
        .bind(chain_id)
        .bind(vault)
        .fetch_one(&mut self.conn)
        .await?)
    }

    /// Extends `key`'s lease `epoch` by `lease`; false when the lease moved to another keeper (or another
    /// connection).
    pub(crate) async fn renew(
        &mut self,
        key: LeaseKey,
        epoch: i64,
        lease: Duration,
    ) -> Result<bool> {
        let (chain_id, vault) = key.columns();
        let renewed = sqlx::query(
            "UPDATE keeper_lease SET expires_at = now() + make_interval(secs => $2)
             WHERE chain_id = $3 AND vault = $4 AND epoch = $1 AND backend_pid = pg_backend_pid()",
        )
        .bind(epoch)
        .bind(lease.as_secs_f64())
        .bind(chain_id)
        .bind(vault)
        .execute(&mut self.conn)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Closes the connection, releasing the lock.
    pub(crate) async fn close(self) {
        let _ = self.conn.close().await;
    }
}
