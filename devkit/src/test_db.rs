//! A fresh, migrated database per test or per `beatstream dev` run.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use beatstream_primitives::db::PoolBuilder;
use sqlx::{Connection, Executor, PgConnection, PgPool};

use crate::{Result, cleanup, server};

/// A uniquely named database with every migration applied, dropped (in the background)
/// when this value is dropped.
#[derive(Debug)]
pub struct TestDb {
    pool: PgPool,
    url: String,
    name: String,
    admin_url: String,
}

impl TestDb {
    /// Creates the database on the test server and migrates it.
    pub async fn new() -> Result<Self> {
        let db = Self::empty().await?;
        beatstream_primitives::db::migrate(&db.pool).await?;
        Ok(db)
    }

    /// Creates the database without migrating it, for testing migrations themselves.
    pub async fn empty() -> Result<Self> {
        let admin = server::admin_url().await?;
        let name = unique_name();
        let mut conn = PgConnection::connect(admin.as_str()).await?;
        conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str()).await?;
        conn.close().await?;

        let mut url = admin.clone();
        url.set_path(&name);
        // A test waits for a connection as long as sqlx's default (30 s): parallel tests share two cores.
        let pool = PoolBuilder::new(url.as_str())
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect()
            .await;
        match pool {
            Ok(pool) => Ok(Self { pool, url: url.into(), name, admin_url: admin.to_string() }),
            Err(e) => {
                cleanup::drop_database(admin.to_string(), name);
                Err(e.into())
            }
        }
    }

    /// Pool connected to this database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Connection URL of this database, for code under test that connects itself.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Name of this database.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        cleanup::drop_database(self.admin_url.clone(), self.name.clone());
    }
}

/// Unique across concurrent test processes (pid) and within one (counter), and across
/// runs that reuse a pid (time), so a database left by a crash never collides.
fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    format!("beatstream_test_{}_{n}_{nanos:x}", std::process::id())
}
