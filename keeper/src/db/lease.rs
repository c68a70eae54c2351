//! The lease's SQL: a Postgres advisory lock held on a dedicated connection, and the `keeper_lease` row whose epoch
//! every journal write checks. The election around it is `crate::leader`.

use std::time::Duration;

use sqlx::{Connection, PgConnection};

use crate::Result;

/// The dedicated connection that tries, holds and renews the lock. Closing it releases the lock.
#[derive(Debug)]
pub(crate) struct LockConnection {
    conn: PgConnection,
}

impl LockConnection {
    /// Opens a connection named `beatstream-keeper-lock` (so an operator can find it in `pg_stat_activity`).
    pub(crate) async fn open(database_url: &str) -> Result<Self> {
        let mut conn = PgConnection::connect(database_url).await?;
        sqlx::query("SET application_name = 'beatstream-keeper-lock'").execute(&mut conn).await?;
        Ok(Self { conn })
    }

    /// Tries the advisory lock `key` without waiting.
    pub(crate) async fn try_lock(&mut self, key: i64) -> Result<bool> {
        Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut self.conn)
            .await?)
    }

    /// The backend pid and name of a leader whose lease has expired, if it has.
    pub(crate) async fn lapsed_leader(&mut self) -> Result<Option<(i32, String)>> {
        let stale: Option<(Option<i32>, String)> = sqlx::query_as(
            "SELECT backend_pid, holder FROM keeper_lease WHERE id = 1 AND expires_at < now()",
        )
        .fetch_optional(&mut self.conn)
        .await?;
        Ok(stale.and_then(|(pid, holder)| Some((pid?, holder))))
    }

    /// Ends another backend's connection (the lapsed leader's lock connection), which releases its lock.
    pub(crate) async fn terminate(&mut self, pid: i32) -> Result<()> {
        sqlx::query("SELECT pg_terminate_backend($1)").bind(pid).execute(&mut self.conn).await?;
        Ok(())
    }

    /// Takes the lease for `holder` on this connection, for `lease`; returns the new epoch.
    pub(crate) async fn take_lease(&mut self, holder: &str, lease: Duration) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO keeper_lease (id, holder, epoch, expires_at, backend_pid)
             VALUES (1, $1, 1, now() + make_interval(secs => $2), pg_backend_pid())
             ON CONFLICT (id) DO UPDATE
                SET holder = $1, epoch = keeper_lease.epoch + 1,
                    expires_at = now() + make_interval(secs => $2), backend_pid = pg_backend_pid()
             RETURNING epoch",
        )
        .bind(holder)
        .bind(lease.as_secs_f64())
        .fetch_one(&mut self.conn)
        .await?)
    }

    /// Extends lease `epoch` by `lease`; false when the lease moved to another keeper (or another connection).
    pub(crate) async fn renew(&mut self, epoch: i64, lease: Duration) -> Result<bool> {
        let renewed = sqlx::query(
            "UPDATE keeper_lease SET expires_at = now() + make_interval(secs => $2)
             WHERE id = 1 AND epoch = $1 AND backend_pid = pg_backend_pid()",
        )
        .bind(epoch)
        .bind(lease.as_secs_f64())
        .execute(&mut self.conn)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Closes the connection, releasing the lock.
    pub(crate) async fn close(self) {
        let _ = self.conn.close().await;
    }
}
