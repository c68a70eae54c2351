//! The load generator's parent process (ceiling, fixtures, spawned relays and workers, CPU sampling, the report)
//! and its worker processes.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, Command, Stdio},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use alloy::primitives::{Address, U256};
use beatstream_primitives::VoucherDomain;
use secp256k1::Secp256k1;
use tokio_util::sync::CancellationToken;
use tracing::info;
use url::Url;

use crate::{
    Cpu, Error, Report, Result, SimulateConfig, WorkerStats, ceiling, fixture, keys, player,
};

/// Runs the load generator (or, with `--worker`, one worker of it) and prints the report.
pub async fn run(config: SimulateConfig, shutdown: CancellationToken) -> Result<()> {
    if config.listeners == 0 || config.processes == 0 || config.ramp_per_sec == 0 {
        return Err(Error::Config(
            "--listeners, --processes and --ramp-per-sec must be at least 1".into(),
        ));
    }
    let vault = config.vault()?;
    let domain = VoucherDomain::new(config.chain_id, vault);
    if let Some(index) = config.worker {
        return worker(&config, domain, index).await;
    }
    let run_id = config.run_id.unwrap_or_else(unix_ms);

    let ceiling = (config.ceiling_secs > 0.0).then(|| {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        ceiling::measure(&domain, threads, config.ceiling_secs)
    });
    if let Some(url) = config.database_url.as_deref().filter(|_| config.seed_fixtures) {
        let pool = beatstream_primitives::db::connect(url).await?;
        fixture::seed(
            &pool,
            config.chain_id,
            &config.seed,
            config.listeners,
            config.track_id,
            1_000_000_000_000,
        )
        .await?;
        pool.close().await;
        info!(target: "beatstream::simulate", listeners = config.listeners, "fixtures seeded");
    }
    let mut relays = Relays::default();
    let urls = if config.spawn_relays > 0 {
        let Some(url) = config.database_url.as_deref() else {
            return Err(Error::Config("--spawn-relays needs --database-url".into()));
        };
        relays.spawn(config.spawn_relays, url, &config, vault).await?
    } else if config.relay.is_empty() {
        return Err(Error::Config(
            "pass --relay URL (or --spawn-relays with --database-url)".into(),
        ));
    } else {
        config.relay.clone()
    };

    // Workers sign ahead, say READY, and start together on GO.
    let mut workers = Vec::new();
    let exe =
        std::env::current_exe().map_err(|e| Error::Simulate(format!("own executable: {e}")))?;
    for index in 0..config.processes {
        let child = Command::new(&exe)
            .args(config.worker_args(index, &urls, vault, run_id))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::Simulate(format!("starting worker: {e}")))?;
        workers.push(child);
    }
    let mut lines = Vec::new();
    for child in &mut workers {
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        out.read_line(&mut line).map_err(|e| Error::Simulate(format!("worker: {e}")))?;
        if line.trim() != "READY" {
            return Err(Error::Simulate(format!("worker did not get ready: {line:?}")));
        }
        lines.push(out);
    }
    let go_ms = unix_ms() + 200;
    for child in &mut workers {
        let stdin = child.stdin.as_mut().expect("piped");
        writeln!(stdin, "GO {go_ms}").map_err(|e| Error::Simulate(format!("worker: {e}")))?;
    }
    info!(target: "beatstream::simulate", listeners = config.listeners, processes = config.processes, relays = urls.len(), "players starting");

    // CPU over the measured window.
    let ramp = config.listeners as f64 / config.ramp_per_sec as f64;
    let window_start_ms = go_ms + ((ramp + config.warmup_secs as f64) * 1000.0) as u64;
    let sampler = {
        let relay_pids = relays.pids();
        let mut sim_pids: Vec<u32> = workers.iter().map(Child::id).collect();
        sim_pids.push(std::process::id());
        let duration = config.duration_secs;
        let database_url = config.database_url.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(window_start_ms.saturating_sub(unix_ms())))
                .await;
            // The database's own backends (the relays' connections are long-lived by now), not other users of
            // the server.
            let db_pids = match database_url.as_deref() {
                Some(url) => backend_pids(url).await.unwrap_or_default(),
                None => Vec::new(),
            };
            // The whole server too: the postmaster and every process it started (WAL writer, checkpointer,
            // autovacuum), when it runs on this machine.
            let postmaster = db_pids.first().and_then(|pid| parent_of(*pid));
            let server_before = postmaster.map(server_pids).unwrap_or_default();
            let sample = || {
                (cpu_ticks(&relay_pids), cpu_ticks(&sim_pids), cpu_ticks(&db_pids), machine_ticks())
            };
            let before = sample();
            let server_ticks_before = cpu_ticks(&server_before);
            tokio::time::sleep(Duration::from_secs(duration)).await;
            let after = sample();
            // Processes that started in the window count in full.
            let server_after = postmaster.map(server_pids).unwrap_or_default();
            let server_ticks_after = cpu_ticks(&server_after);
            let cores =
                |a: u64, b: u64| a.saturating_sub(b) as f64 / ticks_per_sec() / duration as f64;
            Cpu {
                relay: (!relay_pids.is_empty()).then(|| cores(after.0, before.0)),
                simulator: cores(after.1, before.1),
                postgres: cores(after.2, before.2),
                postgres_server: postmaster.map(|_| {
                    let ended: u64 = server_before
                        .iter()
                        .filter(|p| !server_after.contains(p))
                        .map(|p| cpu_ticks(&[*p]))
                        .sum();
                    cores(server_ticks_after + ended, server_ticks_before)
                }),
                machine: cores(after.3, before.3),
            }
        })
    };

    let collect = tokio::task::spawn_blocking(move || {
        let mut stats = Vec::new();
        for mut out in lines {
            let mut line = String::new();
            while out.read_line(&mut line).is_ok_and(|n| n > 0) {
                if let Some(json) = line.trim().strip_prefix("RESULT ") {
                    if let Ok(s) = serde_json::from_str::<WorkerStats>(json) {
                        stats.push(s);
                    }
                    break;
                }
                line.clear();
            }
        }
        stats
    });
    let stats = tokio::select! {
        stats = collect => stats.map_err(|e| Error::Simulate(e.to_string()))?,
        _ = shutdown.cancelled() => {
            for w in &mut workers { let _ = w.kill(); }
            return Err(Error::Simulate("interrupted".into()));
        }
    };
    for mut w in workers {
        let _ = w.wait();
    }
    let cpu = sampler.await.ok();
    relays.stop();
    if stats.len() != config.processes {
        return Err(Error::Simulate(format!(
            "{} of {} workers reported",
            stats.len(),
            config.processes
        )));
    }
    let mut report = Report::merge(config.listeners, &stats, ceiling);
    report.cpu = cpu;
    report.print();
    Ok(())
}

/// One worker process: its share of the players, READY/GO on stdio, RESULT on stdout.
async fn worker(config: &SimulateConfig, domain: VoucherDomain, index: usize) -> Result<()> {
    let run_id = config.run_id.unwrap_or_else(unix_ms);
    let mine: Vec<usize> = (0..config.listeners).filter(|i| i % config.workers == index).collect();
    let secp = Secp256k1::signing_only();
    let expires = unix_ms() / 1000 + 86_400;
    let identities: Vec<_> = mine
        .iter()
        .map(|&i| {
            // A shared listener's second device uses the first one's wallet.
            let wallet = if i < 2 * config.shared_listeners { i & !1 } else { i };
            let identity = keys::Identity::from_keys(
                &secp,
                &domain,
                keys::wallet(&secp, &config.seed, wallet),
                keys::Key::derive(&secp, &config.seed, &format!("session/{run_id}/{i}")),
                U256::from(config.cap),
                expires,
                run_id,
            );
            (identity, config.relay[i % config.relay.len()].clone())
        })
        .collect();
    let Some(first_relay) = identities.first().map(|(_, relay)| relay.clone()) else {
        println!("READY");
        println!("RESULT {}", serde_json::to_string(&WorkerStats::default()).unwrap_or_default());
        return Ok(());
    };
    // The probe plays with a throwaway grant of the first wallet, so the measured grants start from zero.
    let probe_identity = keys::Identity::new(
        &secp,
        &domain,
        &config.seed,
        run_id ^ u64::MAX,
        mine[0],
        U256::from(config.cap),
        expires,
    );
    let (payee, rate) = player::probe(&first_relay, &probe_identity, config.track_id).await?;
    let ramp = config.listeners as f64 / config.ramp_per_sec as f64;
    let beats = ((ramp + (config.warmup_secs + config.duration_secs) as f64 + 5.0) * 1000.0
        / config.beat_ms as f64)
        .ceil() as usize;
    let prepared =
        tokio::task::block_in_place(|| player::prepare(identities, &domain, payee, rate, beats));
    println!("READY");
    let go_ms = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).ok()?;
        line.trim().strip_prefix("GO ")?.parse::<u64>().ok()
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(unix_ms);
    let go = tokio::time::Instant::now() + Duration::from_millis(go_ms.saturating_sub(unix_ms()));
    let per_worker_ramp = config.ramp_per_sec as f64 / config.workers as f64;
    let stats = player::run(
        prepared,
        domain,
        config.track_id,
        go,
        per_worker_ramp,
        Duration::from_secs(config.warmup_secs),
        Duration::from_secs(config.duration_secs),
        config.quiet_beats.then(|| Duration::from_millis(config.beat_ms)),
    )
    .await;
    println!("RESULT {}", serde_json::to_string(&stats).unwrap_or_default());
    Ok(())
}

/// Relay processes started by the simulator.
#[derive(Default)]
struct Relays {
    children: Vec<Child>,
}

impl Relays {
    async fn spawn(
        &mut self,
        n: usize,
        database_url: &str,
        config: &SimulateConfig,
        vault: Address,
    ) -> Result<Vec<Url>> {
        let exe =
            std::env::current_exe().map_err(|e| Error::Simulate(format!("own executable: {e}")))?;
        let mut urls = Vec::new();
        for i in 0..n {
            let addr = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| Error::Simulate(format!("free port: {e}")))?;
            let child = Command::new(&exe)
                .arg("relay")
                .env("BEATSTREAM_DATABASE_URL", database_url)
                .env("BEATSTREAM_RPC_URL", "http://127.0.0.1:1")
                .env("BEATSTREAM_RELAY_LISTEN", addr.to_string())
                .env("BEATSTREAM_CHAIN_ID", config.chain_id.to_string())
                .env("BEATSTREAM_VAULT", vault.to_string())
                .env("BEATSTREAM_RELAY_ID", format!("simulate-relay-{i}"))
                .env("BEATSTREAM_RELAY_BEAT_MS", config.beat_ms.to_string())
                .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| Error::Simulate(format!("starting relay: {e}")))?;
            self.children.push(child);
            let mut up = false;
            for _ in 0..200 {
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    up = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !up {
                return Err(Error::Simulate(format!("relay {i} did not listen on {addr}")));
            }
            urls.push(format!("ws://{addr}/ws/stream").parse().expect("valid url"));
        }
        Ok(urls)
    }

    fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// SIGTERM (graceful shutdown), then wait.
    fn stop(&mut self) {
        for child in &self.children {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
    }
}

impl Drop for Relays {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Server processes serving the database of `url` (this machine's Postgres only).
async fn backend_pids(url: &str) -> Result<Vec<u32>> {
    let pool = beatstream_primitives::db::connect(url).await?;
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    Ok(pids.into_iter().map(|p| p as u32).collect())
}

/// The parent of process `pid` (for a Postgres backend, the postmaster).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the `)` that ends the command name: state, then the parent's pid.
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// `postmaster` and every process whose parent it is.
fn server_pids(postmaster: u32) -> Vec<u32> {
    let mut pids = vec![postmaster];
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if parent_of(pid) == Some(postmaster) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// user + system ticks of the processes.
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // Fields after the `)` that ends the command name: state is 3rd, utime 14th, stime 15th.
            let rest = stat.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

/// Busy ticks of the whole machine (all but idle and iowait).
fn machine_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().next() else { return 0 };
    let f: Vec<u64> = cpu.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = f.iter().take(8).sum();
    total - f.get(3).copied().unwrap_or(0) - f.get(4).copied().unwrap_or(0)
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}
