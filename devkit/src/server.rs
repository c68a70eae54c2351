//! Finds the Postgres server that test databases are created on, once per process.

use std::time::Duration;

use tokio::{net::TcpStream, sync::OnceCell, time::timeout};
use url::Url;

use crate::{Result, cluster};

/// Set to `1` to skip `DATABASE_URL` and port 5432 and always use a private cluster;
/// this is how the private-cluster path itself gets exercised.
const FORCE_PRIVATE_ENV: &str = "BEATSTREAM_TESTKIT_PRIVATE_PG";

const LOCAL_ADDR: &str = "127.0.0.1:5432";

/// URL of the server's maintenance database, where `CREATE DATABASE` runs.
///
/// Only the URL is cached, never a pool: every `#[tokio::test]` has its own runtime and
/// a pool must not outlive the runtime that created it.
pub(crate) async fn admin_url() -> Result<&'static Url> {
    static ADMIN: OnceCell<Url> = OnceCell::const_new();
    ADMIN.get_or_try_init(discover).await
}

async fn discover() -> Result<Url> {
    let force_private = std::env::var(FORCE_PRIVATE_ENV).is_ok_and(|v| v == "1");
    if !force_private {
        if let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            return Ok(Url::parse(&url)?);
        }
        if local_server_listens().await {
            return Ok(Url::parse(&format!("postgres://postgres@{LOCAL_ADDR}/postgres"))?);
        }
    }
    let port = tokio::task::spawn_blocking(cluster::start)
        .await
        .map_err(|e| crate::Error::Cluster(format!("start task failed: {e}")))??;
    Ok(Url::parse(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))?)
}

async fn local_server_listens() -> bool {
    matches!(timeout(Duration::from_secs(1), TcpStream::connect(LOCAL_ADDR)).await, Ok(Ok(_)))
}
