//! Backfill benchmark: a million vault events on anvil, indexed into Postgres from scratch; with the two ceilings of
//! this machine measured in the same run (raw `eth_getLogs` + decode from that anvil, raw COPY into that Postgres),
//! and the process's memory sampled during the backfill.
//!
//! Run: `make bench-indexer` (or `cargo bench -p beatstream-indexer --bench backfill`; `BENCH_EVENTS` overrides the
//! event count). Prints numbers; asserts nothing. Method and figures: docs/BENCHMARKS.md.

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
                .await?
                .get_receipt()
                .await?;
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

    // Ceiling 2: COPY of settlement rows into a copy of vault_settlements with its keys and indexes.
    let db = TestDb::new().await?;
    sqlx::query("CREATE TABLE bench_copy (LIKE vault_settlements INCLUDING ALL)")
        .execute(db.pool())
        .await?;
    let rows = events;
    let mut text = String::with_capacity(rows as usize * 330);
    let hash = |i: u64| format!("\\\\x{:064x}", i);
    let addr = |i: u64| format!("\\\\x{:040x}", i);
    for i in 0..rows {
        use std::fmt::Write;
        let _ = writeln!(
            text,
            "31337\t{}\t{}\t2026-01-01 00:00:00+00\t{}\t{}\t{}\t{}\t{}\t1\t{}\t0",
            i / 1000,
            hash(i / 1000),
            hash(i / 1000 + 7),
            i % 1000,
            hash(i + 1),
            addr(0x100000 + i % LISTENERS),
            addr(0x300000 + i % PAYEES),
            i / LISTENERS + 1
        );
    }
    let mut conn = db.pool().acquire().await?;
    let t = Instant::now();
    let mut copy = conn.copy_in_raw("COPY bench_copy FROM STDIN").await?;
    for chunk in text.as_bytes().chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    copy.finish().await?;
    let copy_rate = rows as f64 / t.elapsed().as_secs_f64();
    println!("ceiling, COPY into vault_settlements' shape (PK + 4 indexes): {copy_rate:.0} rows/s");
    drop(conn);
    drop(text);

    // End to end: the real indexer from the deployment block to the head, memory sampled every 100 ms.
    let deployment_file = tempfile::NamedTempFile::new()?;
    let mut bench_deployment = deployment;
    bench_deployment.contracts.vault = emitter_address;
    bench_deployment.deployment_block = start_block;
    std::fs::write(deployment_file.path(), serde_json::to_string(&bench_deployment)?)?;
    let index_db = TestDb::new().await?;
    let config = Config {
        database_url: index_db.url().to_owned(),
        rpc_url: anvil.endpoint_url(),
        options: Options {
            deployment: deployment_file.path().to_owned(),
            ens_root: "beatstream.eth".into(),
            confirmations: 0,
            reorg_window: 128,
            range_initial: 100,
            range_min: 1,
            range_max: 50_000,
            rpc_concurrency: 2,
            rpc_timeout_secs: 60,
            poll_interval_ms: 100,
            http: None,
        },
    };
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
    println!("end to end: {indexed_events} events in {elapsed:.1}s = {rate:.0} events/s");
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
