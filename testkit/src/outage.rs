//! A database outage for one test: Postgres refuses every new connection to a test's database (a
//! [`TestDb`](crate::TestDb)) and ends the open ones, until the outage ends. Other tests' databases on the same
//! server are untouched.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection, PgPool, postgres::PgConnectOptions};

/// A test database taken away from everyone (the code under test, the test's own pool) until [`Outage::end`].
#[derive(Debug)]
#[must_use = "the database stays unreachable until `end`"]
pub struct Outage {
    /// The server's maintenance database: Postgres refuses to disallow connections to the database one is in.
    admin: PgConnectOptions,
    name: String,
}

impl Outage {
    /// Takes away the database `pool` is connected to: `ALTER DATABASE .. ALLOW_CONNECTIONS false` (for every
    /// role, superusers included), then ends every connection to it; returns once none is left, so the next
    /// connection anyone opens is refused.
    pub async fn start(pool: &PgPool) -> eyre::Result<Self> {
        let name: String = sqlx::query_scalar("SELECT current_database()").fetch_one(pool).await?;
        let admin = pool.connect_options().as_ref().clone().database("postgres");
        let outage = Self { admin, name };
        let mut conn = PgConnection::connect_with(&outage.admin).await?;
        outage.allow(&mut conn, false).await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // Each call waits (up to 5 s) for its backend to exit, not just for the signal to be sent.
            let alive: i64 = sqlx::query_scalar(
                "SELECT count(*) FILTER (WHERE NOT pg_terminate_backend(pid, 5000))
                   FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&outage.name)
            .fetch_one(&mut conn)
            .await?;
            let left: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
                    .bind(&outage.name)
                    .fetch_one(&mut conn)
                    .await?;
            if alive == 0 && left == 0 {
                break;
            }
            eyre::ensure!(
                Instant::now() < deadline,
                "{left} connections to {} survive",
                outage.name
            );
            sqlx::query("SELECT pg_sleep(0.05)").execute(&mut conn).await?;
        }
        conn.close().await?;
        Ok(outage)
    }

    /// Lets connections in again.
    pub async fn end(self) -> eyre::Result<()> {
        let mut conn = PgConnection::connect_with(&self.admin).await?;
        self.allow(&mut conn, true).await?;
        conn.close().await?;
        Ok(())
    }

    async fn allow(&self, conn: &mut PgConnection, allow: bool) -> eyre::Result<()> {
        sqlx::query(&format!(r#"ALTER DATABASE "{}" ALLOW_CONNECTIONS {allow}"#, self.name))
            .execute(conn)
            .await?;
        Ok(())
    }
}
