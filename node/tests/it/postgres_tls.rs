//! Postgres over TLS, as every hosted Postgres requires: a private cluster serving TLS with a certificate from a
//! throwaway CA, refusing connections without it (`hostnossl ... reject`), and each `sslmode` honoured as libpq
//! defines it; then `beatstream node` with every service connecting with `verify-full`.

use beatstream_testkit::{
    postgres::{PgServer, TestCerts},
    scene::Chain,
};

use crate::support::{Node, beatstream, free_addr, http, until};

/// A cluster that speaks TLS with a certificate for `localhost` only, and refuses every connection without TLS.
fn tls_cluster(certs: &TestCerts) -> eyre::Result<PgServer> {
    let server = PgServer::builder()
        .tls(certs)
        .hba(&[
            "local all all trust",
            "hostssl all all 127.0.0.1/32 trust",
            "hostssl all all ::1/128 trust",
            "hostnossl all all 0.0.0.0/0 reject",
            "hostnossl all all ::/0 reject",
        ])
        .setting("listen_addresses", "127.0.0.1")
        .start()?;
    server.psql("CREATE DATABASE beatstream")?;
    Ok(server)
}

/// `beatstream migrate --database-url <url>`: whether it succeeded, and its stdout and stderr.
fn migrate(url: &str) -> eyre::Result<(bool, String)> {
    let out = beatstream().args(["migrate", "--database-url", url]).output()?;
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

#[test]
fn every_sslmode_is_honoured() -> eyre::Result<()> {
    let certs = TestCerts::generate_for(&["DNS:localhost"])?;
    let other = TestCerts::generate()?;
    let server = tls_cluster(&certs)?;
    let port = server.port();
    let ca = certs.ca();
    let ca = ca.display();
    let other_ca = other.ca();
    let other_ca = other_ca.display();
    let url =
        |host: &str, query: &str| format!("postgres://postgres@{host}:{port}/beatstream{query}");

    // Without TLS the server refuses: so each success below went over TLS.
    let (ok, out) = migrate(&url("127.0.0.1", "?sslmode=disable"))?;
    assert!(!ok && out.contains("no encryption"), "sslmode=disable was not refused: {out}");

    // The certificate is for `localhost`, signed by `ca`: verify-full checks both.
    let (ok, out) = migrate(&url("localhost", &format!("?sslmode=verify-full&sslrootcert={ca}")))?;
    assert!(ok, "verify-full with the right CA and name failed: {out}");
    assert!(out.contains("applied"), "{out}");
    let (ok, out) = migrate(&url("127.0.0.1", &format!("?sslmode=verify-full&sslrootcert={ca}")))?;
    assert!(!ok, "verify-full accepted a certificate not made out to 127.0.0.1: {out}");
    let (ok, out) =
        migrate(&url("localhost", &format!("?sslmode=verify-full&sslrootcert={other_ca}")))?;
    assert!(!ok, "verify-full accepted a certificate from an untrusted CA: {out}");

    // verify-ca checks the issuer. (It should not check the name, and does: sqlx 0.8.6 misses the name error of
    // the rustls it runs on, so verify-ca is as strict as verify-full until sqlx 0.9; docs/OPERATIONS.md says so.)
    let (ok, out) = migrate(&url("localhost", &format!("?sslmode=verify-ca&sslrootcert={ca}")))?;
    assert!(ok, "verify-ca with the right CA failed: {out}");
    assert!(out.contains("database is up to date"), "{out}");
    let (ok, out) =
        migrate(&url("127.0.0.1", &format!("?sslmode=verify-ca&sslrootcert={other_ca}")))?;
    assert!(!ok, "verify-ca accepted a certificate from an untrusted CA: {out}");

    // require encrypts without checking; prefer (the default) uses TLS when the server offers it.
    let (ok, out) = migrate(&url("127.0.0.1", "?sslmode=require"))?;
    assert!(ok, "sslmode=require failed: {out}");
    let (ok, out) = migrate(&url("127.0.0.1", ""))?;
    assert!(ok, "the default sslmode (prefer) did not use the server's TLS: {out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_connects_every_service_with_verify_full() -> eyre::Result<()> {
    let certs = TestCerts::generate_for(&["DNS:localhost"])?;
    let server = tls_cluster(&certs)?;
    let url = format!(
        "postgres://postgres@localhost:{}/beatstream?sslmode=verify-full&sslrootcert={}",
        server.port(),
        certs.ca().display()
    );
    let chain = Chain::new().await?;
    let (api, relay) = (free_addr(), free_addr());
    let mut cmd = beatstream();
    cmd.args(["node", "--database-url", &url])
        .args(["--rpc-url", chain.anvil.endpoint_url().as_str()])
        .arg("--deployment")
        .arg(chain.deployment_file.path())
        .args(["--api-listen", &api.to_string(), "--relay-listen", &relay.to_string()])
        .args(["--keeper-private-key", &chain.anvil.private_key_hex(9)])
        .env("RUST_LOG", "info");
    let (_node, logs) = Node::spawn(cmd)?;

    let query = r#"{"query":"{ stats { liveSessions } }"}"#;
    until("the API over TLS Postgres", || async {
        Ok(http(api, "POST", "/graphql", query).ok().filter(|(status, _)| *status == 200))
    })
    .await?;
    until("the relay's /health", || async {
        Ok(http(relay, "GET", "/health", "").ok().filter(|(status, _)| *status == 200))
    })
    .await?;
    until("the keeper to take the lease", || async {
        Ok(logs.event("beatstream::keeper", "became the active keeper"))
    })
    .await?;
    chain.register(&chain.anvil.signer(4), "overtls", 1_000).await?;
    until("the indexer to mirror an artist", || async {
        let found =
            server.psql_in("beatstream", "SELECT count(*) FROM artists WHERE label = 'overtls'")?;
        Ok((found == "1").then_some(()))
    })
    .await?;

    // Every connection of every service, the keeper's lock and the API's LISTEN included, is encrypted.
    let names = server.psql_in(
        "beatstream",
        "SELECT string_agg(DISTINCT application_name, ',' ORDER BY application_name) FROM pg_stat_activity a
           JOIN pg_stat_ssl s USING (pid) WHERE a.application_name LIKE 'beatstream%' AND s.ssl",
    )?;
    for name in [
        "beatstream-api",
        "beatstream-api-listen",
        "beatstream-indexer",
        "beatstream-keeper",
        "beatstream-keeper-lock",
        "beatstream-relay",
    ] {
        assert!(names.split(',').any(|n| n == name), "no TLS connection named {name}: {names}");
    }
    let plain = server.psql_in(
        "beatstream",
        "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
           WHERE a.backend_type = 'client backend' AND NOT s.ssl AND a.pid <> pg_backend_pid()",
    )?;
    assert_eq!(plain, "0", "a connection without TLS (besides psql's own over the socket)");
    Ok(())
}
