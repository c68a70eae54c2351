//! `beatstream dev` as a newcomer runs it: it reaches "ready", simulated listeners move money on-chain within a
//! minute, and Ctrl-C (SIGINT) stops everything it started.

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
    while started.elapsed() < Duration::from_secs(180) && !settled {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) else { continue };
        ready |= line.contains("BeatStream dev node is ready");
        if let Some(rest) = line.trim().strip_prefix("Chain:") {
            anvil_url = rest.split_whitespace().next().map(str::to_owned);
        }
        // "settled on-chain 0.012345 USDC in 3 txs": money moved through the keeper.
        if let Some(pos) = line.find("settled on-chain ") {
            let amount = line[pos + 17..].split_whitespace().next().unwrap_or("0");
            settled = amount.parse::<f64>().unwrap_or(0.0) > 0.0;
        }
    }
    let elapsed = started.elapsed();
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
    assert!(status.is_some_and(|s| s.success()), "did not stop cleanly on SIGINT: {status:?}");
    // The chain it started is gone.
    if let Some(url) = anvil_url {
        let port = url.rsplit(':').next().unwrap_or("0").trim_end_matches('/');
        let alive = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok();
        assert!(!alive, "anvil at {url} still running");
    }
    Ok(())
}
