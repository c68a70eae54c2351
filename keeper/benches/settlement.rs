//! Settlement benchmark: gas per settled voucher and vouchers per transaction at several batch sizes, for grants'
//! first settlements and for repeat settlements, then the time from a stored (acked) voucher to its confirmed
//! settlement under a steady stream of vouchers. Real contracts on anvil (one-second blocks while measuring), the
//! real indexer and keeper, real signatures, Postgres.
//!
//! Run: `make bench-keeper` (or `cargo bench -p beatstream-keeper --bench settlement`). Prints numbers; asserts
//! nothing. Method and figures: docs/BENCHMARKS.md.

use std::time::{Duration, Instant};

use alloy::{
    primitives::{Address, U256},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use beatstream_keeper::{Config, Metrics, Options, SignerArgs};
use beatstream_testkit::{
    Anvil, TestDb,
    scene::{Chain, Player, store_grant, store_voucher},
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const SIZES: [usize; 4] = [10, 50, 100, 200];
const PAYEES: usize = 20;
const KEEPER: usize = 7;
const USDC: u64 = 1_000_000;

struct Bench {
    chain: Chain,
    db: TestDb,
    pool: PgPool,
    indexer_stop: CancellationToken,
}

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let anvil = Anvil::spawn()?;
    let chain = Chain::with(anvil, &[("BEATSTREAM_FEE_BPS", "250")]).await?;
    let db = TestDb::new().await?;
    let pool = PgPool::connect(db.url()).await?;
    let indexer_stop = CancellationToken::new();
    let indexer = beatstream_indexer::Config {
        database: beatstream_primitives::db::DatabaseArgs::new(db.url().to_owned()),
        rpc: beatstream_primitives::rpc::RpcArgs {
            rpc_timeout_secs: 10,
            ..chain.anvil.endpoint_url().into()
        },
        options: beatstream_indexer::Options {
            reorg_window: 64,
            range_max: 10_000,
            poll_interval_ms: 200,
            ..beatstream_indexer::Options::new(chain.deployment_file.path().to_owned())
        },
    };
    tokio::spawn(beatstream_indexer::run(indexer, indexer_stop.clone()));
    let bench = Bench { chain, db, pool, indexer_stop };
    let payees: Vec<Address> = (0..PAYEES).map(|i| Address::repeat_byte(0x10 + i as u8)).collect();

    // Listeners: random wallets, funded with depositFor by account 0 (automine while setting up).
    let total: usize = SIZES.iter().sum::<usize>() + PAYEES;
    eprintln!("funding {total} listeners ...");
    let grants = bench.fund(total).await?;
    // One-second blocks from here on, like a fast L2.
    bench
        .chain
        .provider
        .raw_request::<_, serde_json::Value>("evm_setIntervalMining".into(), (1,))
        .await?;

    println!("\n## Gas per settled voucher (anvil, via-IR build, fee 2.5%)\n");
    println!("| batch | kind | vouchers settled | tx gas | gas / voucher |");
    println!("|---:|---|---:|---:|---:|");
    let mut offset = 0;
    for size in SIZES {
        let group = &grants[offset..offset + size];
        offset += size;
        for (round, kind) in
            [(1u64, "first settlement of a grant"), (2, "repeat (registered grant)")]
        {
            for (i, g) in group.iter().enumerate() {
                bench.voucher(g, payees[i % PAYEES], round * USDC / 100).await?;
            }
            let (gas, settled) = bench.settle_once(size).await?;
            println!(
                "| {size} | {kind} | {settled} | {gas} | {} |",
                gas.checked_div(settled).unwrap_or_default()
            );
        }
    }

    // Latency: the last PAYEES grants stream to one artist each; a voucher a second each, for 40 s.
    println!(
        "\n## Voucher stored -> settlement confirmed (1 s blocks, keeper defaults but thresholds 0)\n"
    );
    println!("| confirmations | vouchers settled | batches | p50 s | p90 s | max s |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let streamers = &grants[offset..offset + PAYEES];
    let mut cumulative = 0;
    for confirmations in [0u64, 2] {
        sqlx::query("DELETE FROM keeper_batch_items").execute(&bench.pool).await?;
        sqlx::query("DELETE FROM keeper_attempts").execute(&bench.pool).await?;
        sqlx::query("DELETE FROM keeper_batches").execute(&bench.pool).await?;
        let mut options = bench.options(PAYEES);
        options.confirmations = confirmations;
        options.poll_ms = 1_000;
        let stop = CancellationToken::new();
        let task = tokio::spawn(beatstream_keeper::run(bench.config(options), stop.clone()));
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(40) {
            cumulative += 1;
            for (i, g) in streamers.iter().enumerate() {
                bench.voucher(g, payees[i], cumulative * 1_000).await?;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        // Let the last ones settle.
        tokio::time::sleep(Duration::from_secs(8)).await;
        stop.cancel();
        task.await??;
        let mut latencies: Vec<f64> = sqlx::query_scalar(
            "SELECT extract(epoch FROM b.confirmed_at - i.voucher_at)::float8
             FROM keeper_batch_items i JOIN keeper_batches b ON b.id = i.batch_id
             WHERE b.status = 'confirmed' AND i.outcome = 'settled'",
        )
        .fetch_all(&bench.pool)
        .await?;
        let batches: i64 =
            sqlx::query_scalar("SELECT count(*) FROM keeper_batches WHERE status = 'confirmed'")
                .fetch_one(&bench.pool)
                .await?;
        latencies.sort_by(f64::total_cmp);
        let q = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p) as usize).copied();
        println!(
            "| {confirmations} | {} | {batches} | {:.2} | {:.2} | {:.2} |",
            latencies.len(),
            q(0.5).unwrap_or(f64::NAN),
            q(0.9).unwrap_or(f64::NAN),
            q(1.0).unwrap_or(f64::NAN)
        );
    }
    bench.indexer_stop.cancel();
    Ok(())
}

impl Bench {
    async fn fund(&self, n: usize) -> eyre::Result<Vec<Player>> {
        let funder = self.chain.anvil.signer(0);
        let usdc = self.chain.usdc(&funder);
        let vault = self.chain.vault(&funder);
        let per = U256::from(1_000 * USDC);
        let amount = per * U256::from(n);
        usdc.mint(funder.address(), amount).send().await?.get_receipt().await?;
        usdc.approve(self.chain.deployment.contracts.vault, amount)
            .send()
            .await?
            .get_receipt()
            .await?;
        let mut grants = Vec::with_capacity(n);
        for nonce in 0..n {
            let wallet = PrivateKeySigner::random();
            vault.depositFor(wallet.address(), per).send().await?.get_receipt().await?;
            let player = Player::new(&self.chain, wallet, nonce as u64).await?;
            store_grant(&self.pool, &self.chain, &player).await?;
            grants.push(player);
        }
        Ok(grants)
    }

    async fn voucher(&self, player: &Player, payee: Address, cumulative: u64) -> eyre::Result<()> {
        store_voucher(&self.pool, &self.chain, player, payee, cumulative).await
    }

    fn options(&self, max_items: usize) -> Options {
        Options {
            signer: SignerArgs {
                private_key: Some(self.chain.anvil.private_key_hex(KEEPER)),
                ..Default::default()
            },
            payee_threshold: 0,
            book_threshold: 0,
            min_item_value: 0,
            confirmations: 0,
            max_items,
            gas_budget: 30_000_000,
            poll_ms: 200,
            ..Default::default()
        }
    }

    fn config(&self, options: Options) -> Config {
        Config {
            database: beatstream_primitives::db::DatabaseArgs::new(self.db.url().to_owned()),
            rpc: self.chain.anvil.endpoint_url().into(),
            deployment: self.chain.deployment_file.path().to_owned(),
            options,
        }
    }

    /// Runs a keeper until every stored voucher is settled in one batch; returns (gas used, vouchers settled).
    async fn settle_once(&self, size: usize) -> eyre::Result<(u64, u64)> {
        let before: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM keeper_batches")
            .fetch_one(&self.pool)
            .await?;
        let stop = CancellationToken::new();
        let metrics = Metrics::new();
        let task = tokio::spawn(beatstream_keeper::run_with_metrics(
            self.config(self.options(size)),
            metrics,
            stop.clone(),
        ));
        let deadline = Instant::now() + Duration::from_secs(120);
        let row = loop {
            let row: Option<(i64, i32)> = sqlx::query_as(
                "SELECT gas_used, settled_count FROM keeper_batches
                 WHERE id > $1 AND status = 'confirmed' AND kind = 'settle' ORDER BY id LIMIT 1",
            )
            .bind(before)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                break row;
            }
            eyre::ensure!(Instant::now() < deadline, "batch of {size} not confirmed in 120 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        stop.cancel();
        task.await??;
        // The indexer must see it before the next round reads what is settled.
        let head = self.chain.head().await? as i64;
        loop {
            let indexed: Option<i64> = sqlx::query_scalar("SELECT block_number FROM chain_cursor")
                .fetch_optional(&self.pool)
                .await?;
            if indexed.unwrap_or(-1) >= head {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok((row.0 as u64, row.1 as u64))
    }
}
