//! `beatstream node` as an operator runs it: every service on, configured partly by flags and partly by `BEATSTREAM_*`
//! variables, each with a value that is not its default, and each service honouring what it was given; SIGINT stops
//! it cleanly.
//!
//! The node takes every service's flags (`cli::tests` checks the whole list); this test gives some of each service's
//! own, beyond addresses, and sees them honoured: the relay's id, the keeper's id, the API's body limit.

use std::{
    io::{BufRead, BufReader},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{primitives::U256, signers::local::PrivateKeySigner};
use beatstream_sim::{
    client::Client,
    keys::{Identity, Key},
};
use beatstream_testkit::{
    TestDb,
    scene::{Chain, USDC},
};
use serde_json::Value;

use crate::support::{Logs, Node, WAIT, free_addr, http, until};

/// The indexer's confirmation depth given to the node (its default is 0).
const CONFIRMATIONS: u64 = 2;

async fn cursor(db: &TestDb) -> eyre::Result<Option<u64>> {
    let n: Option<i64> = sqlx::query_scalar("SELECT block_number FROM chain_cursor")
        .fetch_optional(db.pool())
        .await?;
    Ok(n.map(|n| n as u64))
}

#[tokio::test]
async fn node_runs_every_service_as_configured_by_flags_and_variables() -> eyre::Result<()> {
    let chain = Chain::new().await?;
    let db = TestDb::new().await?;
    let (api, relay, indexer_http, keeper_http) =
        (free_addr(), free_addr(), free_addr(), free_addr());
    let keeper_key = chain.anvil.private_key_hex(9);
    let keeper_address = chain.anvil.signer(9).address();

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beatstream"));
    for (key, _) in std::env::vars() {
        if key.starts_with("BEATSTREAM_") || key == "DATABASE_URL" {
            cmd.env_remove(key);
        }
    }
    // Flags: database, deployment, API address, indexer batch size and HTTP address.
    cmd.args(["node", "--database-url", db.url()])
        .arg("--deployment")
        .arg(chain.deployment_file.path())
        .args(["--api-listen", &api.to_string()])
        .args(["--batch-events", "7"])
        .args(["--indexer-http", &indexer_http.to_string()])
        .args(["--relay-id", "relay-by-flag", "--keeper-id", "keeper-by-flag"])
        // Variables: RPC, relay address, confirmations, polling, keeper key, log format.
        .env("BEATSTREAM_RPC_URL", chain.anvil.endpoint_url().as_str())
        .env("BEATSTREAM_RELAY_LISTEN", relay.to_string())
        .env("BEATSTREAM_CONFIRMATIONS", CONFIRMATIONS.to_string())
        .env("BEATSTREAM_POLL_INTERVAL_MS", "100")
        .env("BEATSTREAM_KEEPER_PRIVATE_KEY", &keeper_key)
        .env("BEATSTREAM_KEEPER_HTTP", keeper_http.to_string())
        .env("BEATSTREAM_API_MAX_BODY_BYTES", "2048")
        .env("BEATSTREAM_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let stderr = child.stderr.take().expect("piped");
    let pid = child.id() as i32;
    let mut node = Node(Some(child));
    let logs = Logs::default();
    let collected = logs.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            collected.0.lock().unwrap().push(line);
        }
    });

    // The API answers GraphQL on the address given by flag.
    let query = r#"{"query":"{ stats { liveSessions } }"}"#;
    let answer = until("the API on its --api-listen address", || async {
        Ok(http(api, "POST", "/graphql", query).ok().filter(|(status, _)| *status == 200))
    })
    .await?;
    assert!(answer.1.contains("liveSessions"), "{answer:?}");
    // ... and refuses a body over the limit given by variable (the default is 32 KiB).
    let padded =
        format!(r#"{{"query":"{{ stats {{ liveSessions }} }}","pad":"{}"}}"#, "x".repeat(3000));
    let (status, body) = http(api, "POST", "/graphql", &padded)?;
    assert_eq!(status, 413, "a 3 KB body with BEATSTREAM_API_MAX_BODY_BYTES=2048: {body}");

    // The indexer serves /health on the address given by flag.
    until("the indexer's /health on its --indexer-http address", || async {
        Ok(http(indexer_http, "GET", "/health", "").ok().filter(|(status, _)| *status == 200))
    })
    .await?;

    // The relay serves /health on the address given by variable.
    let health = until("the relay's /health on BEATSTREAM_RELAY_LISTEN", || async {
        Ok(http(relay, "GET", "/health", "").ok().filter(|(status, _)| *status == 200))
    })
    .await?;
    assert!(health.1.contains(r#""relayId":"relay-by-flag""#), "{health:?}");

    // The keeper runs with the key given by variable, and leads.
    let started = until("the keeper to start", || async {
        Ok(logs.event("beatstream::keeper", "keeper starting"))
    })
    .await?;
    let sender = started["fields"]["sender"].as_str().unwrap_or_default().to_lowercase();
    assert_eq!(sender, keeper_address.to_string().to_lowercase(), "{started}");
    until("the keeper to take the lease", || async {
        Ok(logs.event("beatstream::keeper", "became the active keeper"))
    })
    .await?;
    let holder: String =
        sqlx::query_scalar("SELECT holder FROM keeper_lease").fetch_one(db.pool()).await?;
    assert_eq!(holder, "keeper-by-flag", "the keeper's --keeper-id");

    // The keeper serves /ready on the address given by variable, and is ready once it leads.
    until("the keeper's /ready on BEATSTREAM_KEEPER_HTTP", || async {
        Ok(http(keeper_http, "GET", "/ready", "").ok().filter(|(status, _)| *status == 200))
    })
    .await?;

    // Chain activity: a funded listener and a registered artist (automine: each transaction a block).
    let listener = chain.anvil.signer(3);
    chain.fund(&listener, 10 * USDC).await?;
    chain.register(&chain.anvil.signer(4), "nodeprocess", 1_000).await?;
    let head = chain.head().await?;

    // The indexer stays CONFIRMATIONS behind the head: it reaches head - CONFIRMATIONS and no further.
    let confirmed = head - CONFIRMATIONS;
    until("the indexer to reach the confirmed head", || async {
        let at = cursor(&db).await?;
        assert!(at.is_none_or(|n| n <= confirmed), "indexed block {at:?} with head {head}");
        Ok(at.filter(|n| *n == confirmed))
    })
    .await?;
    let mirrored: Option<i64> =
        sqlx::query_scalar("SELECT registered_block FROM artists WHERE label = 'nodeprocess'")
            .fetch_optional(db.pool())
            .await?;
    assert!(
        mirrored.is_none_or(|b| b as u64 <= confirmed),
        "an artist registered at block {mirrored:?} was mirrored before {CONFIRMATIONS} confirmations"
    );
    chain.mine(CONFIRMATIONS).await?;
    until("the indexer to mirror the artist", || async {
        let found: Option<String> =
            sqlx::query_scalar("SELECT name FROM artists WHERE label = 'nodeprocess'")
                .fetch_optional(db.pool())
                .await?;
        Ok(found)
    })
    .await?;
    until("the indexer to reach the new confirmed head", || async {
        Ok(cursor(&db).await?.filter(|n| *n == head))
    })
    .await?;

    // The API serves what the indexer mirrored.
    let query = r#"{"query":"{ artist(name: \"nodeprocess\") { name } }"}"#;
    let (status, body) = http(api, "POST", "/graphql", query)?;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("nodeprocess.beatstream.eth"), "{body}");

    // The relay accepts a WebSocket hello on its address and sees the listener's indexed funds.
    let secp = secp256k1::Secp256k1::signing_only();
    let wallet = Key::from_secret(&secp, PrivateKeySigner::to_bytes(&listener)).expect("a key");
    let session = Key::derive(&secp, "node-process", "session");
    let expires_at = chain.now().await? + 86_400;
    let identity = Identity::from_keys(
        &secp,
        &chain.domain(),
        wallet,
        session,
        U256::from(USDC),
        expires_at,
        1,
    );
    let mut client = Client::connect(&format!("ws://{relay}/ws/stream").parse()?).await?;
    let available = client.hello(&identity).await?;
    assert_eq!(available, U256::from(10 * USDC));
    client.close().await;

    // SIGINT stops every service cleanly.
    // SAFETY: kill(2) with the pid of our child and a valid signal.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let mut child = node.0.take().expect("running");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the node did not stop within {WAIT:?} of SIGINT");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    reader.join().expect("the log reader");
    let lines = logs.lines();
    assert!(status.success(), "exit {status:?} after SIGINT; logs:\n{}", lines.join("\n"));
    for service in ["relay", "api", "keeper", "indexer"] {
        let stopped = lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|e| e["fields"]["message"] == "stopped" && e["fields"]["task"] == service);
        assert!(stopped, "no `stopped` event of the {service} task");
    }
    // Every log line is one JSON object (BEATSTREAM_LOG_FORMAT=json).
    assert!(!lines.is_empty(), "the node logged nothing");
    for line in &lines {
        let event: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(event["level"].is_string() && event["target"].is_string(), "{line}");
    }
    // The addresses are free again.
    for addr in [api, relay, indexer_http, keeper_http] {
        assert!(TcpStream::connect(addr).is_err(), "{addr} still accepts connections");
    }
    Ok(())
}
