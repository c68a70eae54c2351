//! Backfill benchmark: a million vault events on anvil, indexed into Postgres from scratch; with the two ceilings of
//! this machine measured in the same run (raw `eth_getLogs` + decode from that anvil, raw COPY into that Postgres),
//! and the process's memory sampled during the backfill.
//!
//! Run: `make bench-indexer` (or `cargo bench -p beatstream-indexer --bench backfill`; `BENCH_EVENTS` overrides the
//! event count, `BENCH_BATCH_EVENTS` the indexer's `--batch-events`). Prints numbers; asserts nothing. Method and
//! figures: docs/BENCHMARKS.md.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Bytes, U256},
    providers::{Provider, ProviderBuilder},
    rpc::types::{Filter, TransactionRequest},
    sol,
    sol_types::SolEventInterface,
};
use beatstream_indexer::{Config, Metrics, Options};
use beatstream_primitives::contracts::BeatStreamVault::BeatStreamVaultEvents;
use beatstream_testkit::{Anvil, TestDb, deploy, workspace_root};
use futures_util::{StreamExt, stream};
use tokio_util::sync::CancellationToken;

sol! {
    #[sol(rpc)]
    contract BulkEmitter {
        function emitRound(uint256 first, uint256 n, uint256 payees, uint256 cumulative) external;
    }
}

const LISTENERS: u64 = 20_000;
const PER_TX: u64 = 1_000;
const PAYEES: u64 = 200;

/// Binary COPY data of `rows` settlement rows shaped like `vault_settlements` (1,000 per block, 20,000 listeners,
/// 200 payees), header and trailer included.
fn settlement_rows_binary(rows: u64) -> Vec<u8> {
    fn bytes(buf: &mut Vec<u8>, b: &[u8]) {
        buf.extend_from_slice(&(b.len() as i32).to_be_bytes());
        buf.extend_from_slice(b);
    }
    fn int8(buf: &mut Vec<u8>, v: i64) {
        bytes(buf, &v.to_be_bytes());
    }
    // NUMERIC: base-10000 digits, most significant first.
    fn numeric(buf: &mut Vec<u8>, mut v: u64) {
        let mut digits = Vec::new();
        while v > 0 {
            digits.insert(0, (v % 10_000) as i16);
            v /= 10_000;
        }
        let mut field = Vec::with_capacity(8 + 2 * digits.len());
        field.extend_from_slice(&(digits.len() as i16).to_be_bytes());
        field.extend_from_slice(&(digits.len() as i16 - 1).max(0).to_be_bytes());
        field.extend_from_slice(&0i16.to_be_bytes());
        field.extend_from_slice(&0i16.to_be_bytes());
        for d in digits {
            field.extend_from_slice(&d.to_be_bytes());
        }
        bytes(buf, &field);
    }
    let word = |i: u64| {
        let mut w = [0u8; 32];
        w[24..].copy_from_slice(&i.to_be_bytes());
        w
    };
    let mut buf = Vec::with_capacity(rows as usize * 260);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&[0; 8]);
    // 2026-01-01 in microseconds since 2000-01-01.
    let time: i64 = (1_767_225_600 - 946_684_800) * 1_000_000;
    for i in 0..rows {
        buf.extend_from_slice(&12i16.to_be_bytes());
        int8(&mut buf, 31337);
        int8(&mut buf, (i / 1000) as i64);
        bytes(&mut buf, &word(i / 1000));
        int8(&mut buf, time);
        bytes(&mut buf, &word(i / 1000 + 7));
        bytes(&mut buf, &((i % 1000) as i32).to_be_bytes());
        bytes(&mut buf, &word(i + 1));
        bytes(&mut buf, &word(0x100000 + i % LISTENERS)[12..]);
        bytes(&mut buf, &word(0x300000 + i % PAYEES)[12..]);
        numeric(&mut buf, 1);
        numeric(&mut buf, i / LISTENERS + 1);
        numeric(&mut buf, 0);
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    buf
}

/// COPYs `data` into `table` in 1 MiB messages, as the indexer does; returns rows/s.
async fn copy_binary(db: &TestDb, table: &str, data: &[u8], rows: u64) -> eyre::Result<f64> {
    checkpoint(db).await?;
    let mut conn = db.pool().acquire().await?;
    let t = Instant::now();
    let mut copy = conn.copy_in_raw(&format!("COPY {table} FROM STDIN (FORMAT binary)")).await?;
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    copy.finish().await?;
    Ok(rows as f64 / t.elapsed().as_secs_f64())
}

/// Flushes Postgres' dirty pages and starts a new WAL checkpoint cycle, so that every measured phase starts from the
/// same state. Otherwise a checkpoint owed by the phase before (the server checkpoints every `max_wal_size` of WAL,
/// and a backfill writes about 2 GB) lands in whichever phase comes next: the COPY ceiling moved between 84,000 and
/// 131,000 rows/s from run to run before this.
async fn checkpoint(db: &TestDb) -> eyre::Result<()> {
    sqlx::query("CHECKPOINT").execute(db.pool()).await?;
    Ok(())
}

/// CPU seconds so far of this process (the indexer), Postgres' processes, anvil and the rest, from `/proc`.
#[derive(Default)]
struct Cpu {
    indexer: f64,
    postgres: f64,
    anvil: f64,
    other: f64,
}

impl Cpu {
    /// Cores used between `before` and now, over `secs` seconds.
    fn since(&self, before: &Cpu, secs: f64) -> Cpu {
        Cpu {
            indexer: (self.indexer - before.indexer) / secs,
            postgres: (self.postgres - before.postgres) / secs,
            anvil: (self.anvil - before.anvil) / secs,
            // Processes that exited in between make this negative.
            other: ((self.other - before.other) / secs).max(0.0),
        }
    }
}

fn cpu_by_process() -> Cpu {
    // Clock ticks per second: 100 on Linux.
    const HZ: f64 = 100.0;
    let me = std::process::id().to_string();
    let mut cpu = Cpu::default();
    let Ok(dir) = std::fs::read_dir("/proc") else { return cpu };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // pid (comm) state ppid ...: fields after the closing parenthesis; utime and stime are the 12th and 13th.
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let secs = (ticks(11) + ticks(12)) / HZ;
        match comm {
            _ if name == me => cpu.indexer += secs,
            "postgres" => cpu.postgres += secs,
            "anvil" => cpu.anvil += secs,
            _ => cpu.other += secs,
        }
    }
    cpu
}

/// The receipt of a sent transaction. anvil mines on arrival, so it is there at once or within milliseconds;
/// alloy's `get_receipt` would poll every 250 ms, which made generating a million events take minutes.
async fn receipt_of(
    provider: &impl Provider,
    hash: alloy::primitives::TxHash,
) -> eyre::Result<alloy::rpc::types::TransactionReceipt> {
    for _ in 0..10_000 {
        if let Some(r) = provider.get_transaction_receipt(hash).await? {
            return Ok(r);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    eyre::bail!("no receipt for {hash}")
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

#[tokio::main]
async fn main() -> eyre::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let target_events: u64 =
        std::env::var("BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    println!(
        "# indexer backfill benchmark ({} cores)",
        std::thread::available_parallelism()?.get()
    );

    // Chain: the real contracts, plus the bulk emitter standing in for the vault.
    let anvil = Anvil::spawn_with(|b| b.arg("--gas-limit").arg("100000000"))?;
    let deployment = deploy(&anvil, &[]).await?;
    let signer = anvil.signer(0);
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(anvil.endpoint_url());
    let artifact: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        workspace_root().join("out/BulkEmitter.sol/BulkEmitter.json"),
    )?)?;
    let code: Bytes = artifact["bytecode"]["object"].as_str().expect("bytecode").parse()?;
    let start_block = provider.get_block_number().await?;
    let receipt = provider
        .send_transaction(TransactionRequest::default().with_deploy_code(code))
        .await?
        .get_receipt()
        .await?;
    let emitter_address = receipt.contract_address.expect("deployed");
    let emitter = BulkEmitter::new(emitter_address, &provider);

    // Generate: one transaction per 1,000 listeners, waiting for each receipt (anvil stalls when flooded).
    let generated = Instant::now();
    let mut events = 0u64;
    let mut cumulative = 1u64;
    while events < target_events {
        for first in (0..LISTENERS).step_by(PER_TX as usize) {
            let r = emitter
                .emitRound(
                    U256::from(first),
                    U256::from(PER_TX),
                    U256::from(PAYEES),
                    U256::from(cumulative),
                )
                .gas(60_000_000)
                .send()
                .await?;
            let r = receipt_of(&provider, *r.tx_hash()).await?;
            eyre::ensure!(r.status(), "emitRound reverted");
            events += r.inner.logs().len() as u64;
        }
        cumulative += 1;
    }
    let head = provider.get_block_number().await?;
    println!(
        "generated: {events} events in {} blocks in {:.1}s",
        head - start_block,
        generated.elapsed().as_secs_f64()
    );

    // Ceiling 1: eth_getLogs + decode, 20 blocks (20,000 logs) per request, two requests in flight.
    let reader = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let t = Instant::now();
    let decoded = AtomicU64::new(0);
    let ranges: Vec<(u64, u64)> =
        (start_block..=head).step_by(20).map(|from| (from, (from + 19).min(head))).collect();
    stream::iter(ranges)
        .map(|(from, to)| {
            let reader = &reader;
            let decoded = &decoded;
            async move {
                let filter = Filter::new().address(emitter_address).from_block(from).to_block(to);
                let logs = reader.get_logs(&filter).await?;
                for log in &logs {
                    BeatStreamVaultEvents::decode_raw_log(log.topics(), &log.data().data)?;
                }
                decoded.fetch_add(logs.len() as u64, Ordering::Relaxed);
                eyre::Ok(())
            }
        })
        .buffered(2)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<eyre::Result<Vec<_>>>()?;
    let fetch_rate = decoded.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    println!(
        "ceiling, eth_getLogs + decode: {fetch_rate:.0} logs/s ({} logs)",
        decoded.load(Ordering::Relaxed)
    );

    // Ceiling 2: binary COPY (the indexer's own way of writing raw rows) of settlement rows into a copy of
    // vault_settlements with its keys and indexes; for scale, the same into a table without any index.
    let db = TestDb::new().await?;
    sqlx::query("CREATE TABLE bench_copy (LIKE vault_settlements INCLUDING ALL)")
        .execute(db.pool())
        .await?;
    sqlx::query("CREATE TABLE bench_copy_bare (LIKE vault_settlements)").execute(db.pool()).await?;
    let indexes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 'vault_settlements'")
            .fetch_one(db.pool())
            .await?;
    let rows = events;
    let data = settlement_rows_binary(rows);
    let copy_rate = copy_binary(&db, "bench_copy", &data, rows).await?;
    println!(
        "ceiling, binary COPY into vault_settlements' shape (primary key and {} more indexes): {copy_rate:.0} rows/s",
        indexes - 1
    );
    let bare_rate = copy_binary(&db, "bench_copy_bare", &data, rows).await?;
    println!("  for scale, the same rows into a table without indexes: {bare_rate:.0} rows/s");
    drop(data);

    // End to end: the real indexer from the deployment block to the head, memory sampled every 100 ms.
    let deployment_file = tempfile::NamedTempFile::new()?;
    let mut bench_deployment = deployment;
    bench_deployment.contracts.vault = emitter_address;
    bench_deployment.deployment_block = start_block;
    std::fs::write(deployment_file.path(), serde_json::to_string(&bench_deployment)?)?;
    let index_db = TestDb::new().await?;
    let defaults = Options::new(deployment_file.path().to_owned());
    let config = Config {
        database: beatstream_primitives::db::DatabaseArgs::new(index_db.url().to_owned()),
        rpc: beatstream_primitives::rpc::RpcArgs {
            rpc_timeout_secs: 60,
            ..anvil.endpoint_url().into()
        },
        // The defaults of `beatstream indexer`, except the 60 s RPC timeout this benchmark has always used and a
        // 100 ms head poll (the run ends once the indexer is caught up); `BENCH_BATCH_EVENTS` tries another
        // `--batch-events`.
        options: Options {
            poll_interval_ms: 100,
            batch_events: std::env::var("BENCH_BATCH_EVENTS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.batch_events),
            ..defaults
        },
    };
    let batch_events = config.options.batch_events;
    checkpoint(&index_db).await?;
    let metrics = Metrics::new();
    let shutdown = CancellationToken::new();
    let rss_before = rss_mib();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !done.load(Ordering::Relaxed) {
                samples.push(rss_mib());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        })
    };
    let cpu_before = cpu_by_process();
    let t = Instant::now();
    let task = tokio::spawn(beatstream_indexer::run_with_metrics(
        config,
        metrics.clone(),
        shutdown.clone(),
    ));
    while (metrics.indexed.get() as u64) < head {
        eyre::ensure!(!task.is_finished(), "indexer stopped: {:?}", metrics.last_error());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = t.elapsed().as_secs_f64();
    let cpu = cpu_by_process().since(&cpu_before, elapsed);
    done.store(true, Ordering::Relaxed);
    shutdown.cancel();
    task.await??;
    let samples = sampler.await?;
    let indexed_events: i64 =
        sqlx::query_scalar("SELECT (SELECT count(*) FROM vault_settlements) + (SELECT count(*) FROM vault_deposits) + (SELECT count(*) FROM vault_grant_registrations)")
            .fetch_one(index_db.pool())
            .await?;
    let rate = indexed_events as f64 / elapsed;
    let quarter = samples.len() / 4;
    let (early, late) = (&samples[..quarter.max(1)], &samples[samples.len() - quarter.max(1)..]);
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    println!(
        "end to end (--batch-events {batch_events}): {indexed_events} events in {elapsed:.1}s = {rate:.0} events/s"
    );
    println!(
        "  CPU during backfill (cores): indexer {:.2}, Postgres {:.2}, anvil {:.2}, everything else {:.2}",
        cpu.indexer, cpu.postgres, cpu.anvil, cpu.other
    );
    println!(
        "  fraction of the lower ceiling: {:.2} (getLogs+decode {:.0}/s, COPY {:.0}/s)",
        rate / fetch_rate.min(copy_rate),
        fetch_rate,
        copy_rate
    );
    println!(
        "  memory (process RSS): before {rss_before:.0} MiB; during backfill min {:.0}, max {:.0}; first quarter mean {:.0}, last quarter mean {:.0} MiB",
        samples.iter().cloned().fold(f64::INFINITY, f64::min),
        samples.iter().cloned().fold(0.0, f64::max),
        mean(early),
        mean(late)
    );
    Ok(())
}
