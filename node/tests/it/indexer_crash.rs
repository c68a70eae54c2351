//! `kill -9` of `beatstream indexer` at moments of a backfill chosen by progress (after the cursor passes a block, and
//! inside a batch's transaction), then restarts: the result has no duplicate and no gap, and equals an uninterrupted
//! index of the same chain.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{
    network::EthereumWallet,
    primitives::{Bytes, U256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use beatstream_primitives::{
    SessionGrant, VoucherDomain,
    contracts::{BeatStreamVault, MockUSDC, settle_batch_gas_limit},
};
use beatstream_testkit::{
    Anvil, TestDb, deploy,
    mirror::{assert_same, dump},
};

/// Starts `beatstream indexer` on `db`, with tiny getLogs ranges and batches so that a backfill is many small
/// transactions, two of them in flight at a time.
fn spawn_indexer(anvil: &Anvil, deployment: &std::path::Path, db: &TestDb) -> Child {
    Command::new(env!("CARGO_BIN_EXE_beatstream"))
        .args(["indexer", "--database-url", db.url(), "--rpc-url", anvil.endpoint_url().as_str()])
        .arg("--deployment")
        .arg(deployment)
        .args([
            "--range-initial",
            "1",
            "--range-max",
            "2",
            "--batch-events",
            "2",
            "--poll-interval-ms",
            "50",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn beatstream indexer")
}

/// SIGKILL, then reap.
fn kill_9(mut child: Child) -> std::io::Result<()> {
    let killed = child.kill();
    child.wait()?;
    killed
}

async fn indexed(db: &TestDb) -> eyre::Result<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT block_number FROM chain_cursor")
        .fetch_optional(db.pool())
        .await?)
}

async fn wait_indexed(db: &TestDb, block: u64) -> eyre::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while indexed(db).await?.is_none_or(|n| (n as u64) < block) {
        eyre::ensure!(Instant::now() < deadline, "indexer did not reach block {block}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Waits until a backend on `db` other than the test's own is blocked on a lock: the indexer inside a batch's
/// transaction, waiting to move its checkpoint.
async fn wait_for_lock_waiter(db: &TestDb) -> eyre::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock' AND xact_start IS NOT NULL",
        )
        .fetch_one(db.pool())
        .await?;
        if waiting > 0 {
            return Ok(());
        }
        eyre::ensure!(Instant::now() < deadline, "the indexer never waited on the held lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn kill_9_at_any_moment_loses_and_duplicates_nothing() -> eyre::Result<()> {
    let anvil = Anvil::spawn()?;
    let deployment = deploy(&anvil, &[]).await?;
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), serde_json::to_string(&deployment)?)?;

    // Activity: 4 listeners, 40 blocks of settlements with 4 items each (50 empty blocks after each), plus deposits.
    let keeper = anvil.signer(0);
    let domain = VoucherDomain::new(deployment.chain_id, deployment.contracts.vault);
    let url = anvil.endpoint_url();
    let as_keeper =
        ProviderBuilder::new().wallet(EthereumWallet::from(keeper)).connect_http(url.clone());
    let mut players = Vec::new();
    for i in 1..5 {
        let listener = anvil.signer(i);
        let p = ProviderBuilder::new()
            .wallet(EthereumWallet::from(listener.clone()))
            .connect_http(url.clone());
        let usdc = MockUSDC::new(deployment.contracts.usdc, &p);
        usdc.mint(listener.address(), U256::from(100_000_000u64))
            .send()
            .await?
            .get_receipt()
            .await?;
        usdc.approve(deployment.contracts.vault, U256::MAX).send().await?.get_receipt().await?;
        BeatStreamVault::new(deployment.contracts.vault, &p)
            .deposit(U256::from(100_000_000u64))
            .send()
            .await?
            .get_receipt()
            .await?;
        let key = PrivateKeySigner::random();
        let grant = SessionGrant {
            listener: listener.address(),
            sessionKey: key.address(),
            cap: U256::from(100_000_000u64),
            expiresAt: u64::MAX / 2,
            nonce: 1,
        };
        let grant_sig = domain.sign_grant(&listener, &grant)?;
        players.push((key, grant, grant_sig));
    }
    let vault = BeatStreamVault::new(deployment.contracts.vault, &as_keeper);
    for round in 1..=40u64 {
        let mut items = Vec::new();
        for (key, grant, grant_sig) in &players {
            let payee = anvil.addresses()[5 + (round % 3) as usize];
            let cumulative = U256::from(round * 1_000);
            let sig = domain.sign_voucher(key, grant.id(), payee, cumulative)?;
            items.push(BeatStreamVault::SettlementItem {
                grant: grant.clone().into(),
                grantSignature: Bytes::copy_from_slice(grant_sig),
                payee,
                cumulative,
                voucherSignature: Bytes::copy_from_slice(&sig),
            });
        }
        vault
            .settleBatch(items.clone())
            .gas(settle_batch_gas_limit(items.len()))
            .send()
            .await?
            .get_receipt()
            .await?;
        // Empty blocks between rounds make the backfill long enough to be killed many times.
        let _: serde_json::Value =
            as_keeper.raw_request("anvil_mine".into(), (U256::from(50),)).await?;
    }
    let head = as_keeper.get_block_number().await?;

    // Kill -9 repeatedly, each time at a moment chosen by progress, restarting in between: in odd rounds between
    // batches, once the cursor has moved on by another step; in even rounds inside a batch's transaction, held open
    // by a lock on the cursor row's table that its checkpoint must wait for (its data written, not committed).
    let db = TestDb::new().await?;
    let rounds = 6u64;
    let step = head / (rounds + 2);
    let mut positions = Vec::new();
    for round in 1..=rounds {
        let target = round * step;
        let child = spawn_indexer(&anvil, file.path(), &db);
        if round % 2 == 1 {
            let reached = wait_indexed(&db, target).await;
            kill_9(child)?;
            reached?;
            let at = indexed(&db).await?.unwrap_or(0) as u64;
            assert!(at < head, "round {round}: killed mid-backfill, at block {at} of {head}");
            positions.push(("between batches", at));
        } else {
            let held = async {
                wait_indexed(&db, target).await?;
                let mut holder = db.pool().begin().await?;
                sqlx::query("LOCK TABLE chain_cursor IN SHARE MODE").execute(&mut *holder).await?;
                let before = indexed(&db).await?;
                wait_for_lock_waiter(&db).await?;
                Ok::<_, eyre::Report>((holder, before))
            }
            .await;
            kill_9(child)?;
            let (holder, before) = held?;
            holder.rollback().await?;
            let after = indexed(&db).await?;
            assert_eq!(
                after, before,
                "round {round}: a batch killed inside its transaction left its checkpoint"
            );
            let at = after.unwrap_or(0) as u64;
            assert!(at < head, "round {round}: killed mid-backfill, at block {at} of {head}");
            positions.push(("inside a batch", at));
        }
    }
    // Progress, not luck: every kill happened further on than the one before.
    assert!(
        positions.windows(2).all(|w| w[0].1 < w[1].1),
        "each kill after more progress than the last: {positions:?}"
    );
    let child = spawn_indexer(&anvil, file.path(), &db);
    let finished = wait_indexed(&db, head).await;
    kill_9(child)?;
    finished?;

    // An uninterrupted index of the same chain.
    let fresh = TestDb::new().await?;
    let child = spawn_indexer(&anvil, file.path(), &fresh);
    let finished = wait_indexed(&fresh, head).await;
    kill_9(child)?;
    finished?;
    let settlements: i64 =
        sqlx::query_scalar("SELECT count(*) FROM vault_settlements").fetch_one(db.pool()).await?;
    assert_eq!(settlements, 160, "every settlement once");
    assert_same(&dump(&db).await?, &dump(&fresh).await?);
    Ok(())
}
