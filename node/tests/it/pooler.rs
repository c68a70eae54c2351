//! `beatstream node` behind PgBouncer (Debian's package), the server reachable only through it: every service works
//! with `--db-pooler session`, and without it the API's connect-time setting is refused with a message that says
//! what to do.
//!
//! Debian's PgBouncer is 1.18: in transaction mode it cannot carry prepared statements from one server connection
//! to the next (that came in 1.21, `max_prepared_statements`), and sqlx prepares every statement with parameters,
//! so transaction mode cannot be run here; what it needs besides (`--session-database-url` for the keeper's lock
//! and the API's `LISTEN`) is checked by `beatstream_primitives::db`'s unit tests. See docs/OPERATIONS.md.

use beatstream_testkit::{
    postgres::{PgBouncer, PgServer, PoolMode},
    scene::Chain,
};

use crate::support::{Node, beatstream, free_addr, http, until};

/// A cluster that takes the services' connections over its unix socket only (so a service that bypassed the
/// pooler would fail), with a database `beatstream` migrated directly (as `beatstream migrate` must be: it holds a
/// session lock) by the role `migrator`, the one role allowed over TCP; and PgBouncer in front in session mode.
fn pooled() -> eyre::Result<(PgServer, PgBouncer, String)> {
    let server = PgServer::builder()
        .hba(&[
            "local all all trust",
            "host all migrator 127.0.0.1/32 trust",
            "host all all 0.0.0.0/0 reject",
            "host all all ::/0 reject",
        ])
        .start()?;
    server.psql("CREATE ROLE migrator SUPERUSER LOGIN")?;
    server.psql("CREATE DATABASE beatstream")?;
    let direct = server.url("127.0.0.1", "migrator", "beatstream", "?sslmode=disable");
    let out = beatstream().args(["migrate", "--database-url", &direct]).output()?;
    eyre::ensure!(out.status.success(), "migrate: {out:?}");
    let bouncer = PgBouncer::start(&server, "beatstream", PoolMode::Session, &[])?;
    let url =
        format!("postgres://postgres@127.0.0.1:{}/beatstream?sslmode=disable", bouncer.port());
    Ok((server, bouncer, url))
}

#[test]
fn without_db_pooler_the_api_is_told_what_to_change() -> eyre::Result<()> {
    let (_server, _bouncer, url) = pooled()?;
    let out = beatstream()
        .args(["api", "--database-url", &url, "--api-listen", &free_addr().to_string()])
        .args(["--api-chain-id", "31337"])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the API started though PgBouncer refuses its startup setting");
    assert!(
        stderr.contains("unsupported startup parameter") && stderr.contains("--db-pooler session"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_runs_every_service_through_pgbouncer() -> eyre::Result<()> {
    let (server, _bouncer, url) = pooled()?;
    let chain = Chain::new().await?;
    let (api, relay) = (free_addr(), free_addr());
    let mut cmd = beatstream();
    cmd.args(["node", "--database-url", &url, "--db-pooler", "session", "--no-migrate"])
        .args(["--rpc-url", chain.anvil.endpoint_url().as_str()])
        .arg("--deployment")
        .arg(chain.deployment_file.path())
        .args(["--api-listen", &api.to_string(), "--relay-listen", &relay.to_string()])
        .args(["--keeper-private-key", &chain.anvil.private_key_hex(9)])
        .env("RUST_LOG", "info");
    let (_node, logs) = Node::spawn(cmd)?;

    until("the keeper to take the lease through PgBouncer", || async {
        Ok(logs.event("beatstream::keeper", "became the active keeper"))
    })
    .await?;
    chain.register(&chain.anvil.signer(4), "pooled", 1_000).await?;
    until("the indexer to mirror an artist through PgBouncer", || async {
        let found =
            server.psql_in("beatstream", "SELECT count(*) FROM artists WHERE label = 'pooled'")?;
        Ok((found == "1").then_some(()))
    })
    .await?;
    let query = r#"{"query":"{ artist(name: \"pooled\") { name } }"}"#;
    let (_, body) = until("the API to serve the artist through PgBouncer", || async {
        Ok(http(api, "POST", "/graphql", query).ok().filter(|(status, _)| *status == 200))
    })
    .await?;
    assert!(body.contains("pooled.beatstream.eth"), "{body}");
    let (status, body) = http(relay, "GET", "/health", "")?;
    assert_eq!(status, 200, "{body}");
    // Every service's connections came through PgBouncer: the server takes none over TCP.
    let names = server.psql_in(
        "beatstream",
        "SELECT string_agg(DISTINCT application_name, ',' ORDER BY application_name) FROM pg_stat_activity
           WHERE application_name LIKE 'beatstream%'",
    )?;
    for name in
        ["beatstream-api", "beatstream-indexer", "beatstream-keeper-lock", "beatstream-relay"]
    {
        assert!(names.split(',').any(|n| n == name), "{name} is not connected: {names}");
    }
    Ok(())
}
