//! `beatstream dev` as a newcomer runs it: it reaches "ready" with three tracks of audio served, simulated listeners
//! move money on-chain within a minute and fetch, verify and decrypt the chunks their payments release, and Ctrl-C
//! (SIGINT) stops everything it started: the chain and the database it created are gone.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn dev_reaches_ready_moves_money_and_stops_on_ctrl_c() -> eyre::Result<()> {
    let (api, relay) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_beatstream"))
        .args(["dev", "--listeners", "3"])
        .args(["--api-listen", &format!("127.0.0.1:{api}")])
        .args(["--relay-listen", &format!("127.0.0.1:{relay}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = child.id() as i32;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    let started = Instant::now();
    let mut ready = false;
    let mut settled = false;
    let mut anvil_url = None;
    let mut database_url = None;
    let mut manifests = Vec::new();
    // From the totals line's "audio verified N s of K keys, F failed": the most seen, and any failure.
    let (mut verified, mut failed) = (0u64, 0u64);
    while started.elapsed() < Duration::from_secs(180) && !(settled && verified > 0) {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) else { continue };
        ready |= line.contains("BeatStream dev node is ready");
        if let Some(rest) = line.trim().strip_prefix("Chain:") {
            anvil_url = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(rest) = line.trim().strip_prefix("Postgres:") {
            database_url = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(url) = line.split_whitespace().find(|w| w.ends_with("/manifest.json")) {
            manifests.push(url.to_owned());
        }
        if let Some(pos) = line.find("audio verified ") {
            let words: Vec<&str> = line[pos + 15..].split_whitespace().collect();
            // ["N", "s", "of", "K", "keys,", "F", "failed"]
            let n = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok()).unwrap_or(0);
            assert!(n(0) <= n(3), "verified more seconds than keys received: {line}");
            verified = verified.max(n(0));
            failed = failed.max(n(5));
        }
        // "settled on-chain 0.012345 USDC in 3 txs": money moved through the keeper.
        if let Some(pos) = line.find("settled on-chain ") {
            let amount = line[pos + 17..].split_whitespace().next().unwrap_or("0");
            settled = amount.parse::<f64>().unwrap_or(0.0) > 0.0;
        }
    }
    let elapsed = started.elapsed();
    // The demo's split and tips reached the chain: its three tips settled (Tipped, mirrored with their messages) and
    // the split track's recipients were paid (SplitPaid: the simulated listeners play it).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let demo = database_url.as_deref().map(|database| {
        runtime.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(database).await?;
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let (tips, messages, paid): (i64, Vec<Vec<u8>>, i64) = sqlx::query_as(
                    "SELECT (SELECT count(*) FROM vault_tips),
                            (SELECT coalesce(array_agg(message ORDER BY tip_id), '{}') FROM vault_tips),
                            (SELECT count(*) FROM split_earnings WHERE earned > 0)",
                )
                .fetch_one(&mut conn)
                .await?;
                if (tips == 3 && paid == 3) || Instant::now() > deadline {
                    return eyre::Ok((tips, messages, paid));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    });
    // Ctrl-C.
    // SAFETY: kill(2) with a valid pid and signal.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(ready, "never printed ready");
    assert!(settled, "no settlement within {elapsed:?}");
    assert_eq!(manifests.len(), 3, "the banner names each demo track's manifest: {manifests:?}");
    assert!(verified > 0, "no chunk fetched, verified and decrypted within {elapsed:?}");
    assert_eq!(failed, 0, "audio failures");
    assert!(status.is_some_and(|s| s.success()), "did not stop cleanly on SIGINT: {status:?}");
    let (tips, messages, paid) = demo.expect("the ready banner names the database")?;
    assert_eq!(tips, 3, "the demo's tips settled");
    assert_eq!(
        messages[2], b"<b>gm</b> from the dev node, shown escaped, never rendered",
        "a tip's message as sent"
    );
    assert_eq!(paid, 3, "each of the split track's three recipients was paid");
    // The chain it started is gone.
    let url = anvil_url.expect("the ready banner names the chain (`Chain: <url>`)");
    let port = url.rsplit(':').next().unwrap_or("0").trim_end_matches('/');
    let alive = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok();
    assert!(!alive, "anvil at {url} still running");
    // So is the database it created: the server says it does not exist, or the private cluster it was on is gone.
    let database = database_url.expect("the ready banner names the database (`Postgres: <url>`)");
    let connected = runtime.block_on(async {
        use sqlx::Connection;
        tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(&database)).await
    });
    match connected {
        Ok(Err(sqlx::Error::Database(e))) if e.code().as_deref() == Some("3D000") => {}
        Ok(Err(sqlx::Error::Io(_))) => {}
        other => panic!("the database {database} is still there after dev stopped: {other:?}"),
    }
    Ok(())
}
