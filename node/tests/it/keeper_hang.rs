//! A hung keeper leader: `beatstream keeper` stops itself (SIGSTOP, as a paused or frozen process) after deciding
//! and signing a batch and before journaling it, with its connections open and its lease epoch in hand. The
//! standby takes over once the lease has lapsed and settles the voucher. When the old leader is continued
//! (SIGCONT), its journal write under the stale epoch is refused (`LostLease`): it journals nothing, sends nothing,
//! and stands by.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use alloy::{primitives::Address, providers::Provider};
use beatstream_keeper::{Metrics, Options, SignerArgs};
use beatstream_testkit::{
    Anvil, TestDb,
    scene::{Chain, Player, USDC, store_grant, store_voucher},
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Anvil account both keepers sign with.
const KEEPER: usize = 7;

/// Polls `check` every 50 ms until it holds, failing after `secs`.
async fn wait<F, Fut>(what: &str, secs: u64, mut check: F) -> eyre::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = eyre::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if check().await? {
            return Ok(());
        }
        eyre::ensure!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The process state letter of `pid` (`T`: stopped).
fn state(pid: u32) -> eyre::Result<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    Ok(after.trim_start().chars().next().unwrap_or('?'))
}

fn signal(child: &Child, sig: libc::c_int) -> eyre::Result<()> {
    // SAFETY: sending a signal to our own child, which has not been reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    eyre::ensure!(rc == 0, "kill({sig}) failed: {}", std::io::Error::last_os_error());
    Ok(())
}

/// (keeper id, epoch, nonce, status) of every journaled batch.
async fn batches(pool: &PgPool) -> eyre::Result<Vec<(String, i64, i64, String)>> {
    Ok(sqlx::query_as("SELECT keeper_id, epoch, nonce, status FROM keeper_batches ORDER BY id")
        .fetch_all(pool)
        .await?)
}

async fn settled(chain: &Chain, player: &Player, payee: Address) -> eyre::Result<u64> {
    let vault = chain.vault(&chain.anvil.signer(0));
    Ok(vault.settled(player.grant.id(), payee).call().await?.to::<u64>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_leader_resumes_to_a_refused_journal_write() -> eyre::Result<()> {
    let chain = Chain::with(
        Anvil::spawn()?,
        &[("BEATSTREAM_FEE_BPS", "250"), ("BEATSTREAM_WITHDRAWAL_DELAY", "3600")],
    )
    .await?;
    let db = TestDb::new().await?;
    let pool = PgPool::connect(db.url()).await?;

    // The indexer keeps the database current (the keeper reads what is settled from it).
    let indexer_metrics = beatstream_indexer::Metrics::new();
    let indexer_stop = CancellationToken::new();
    let indexer = tokio::spawn(beatstream_indexer::run_with_metrics(
        beatstream_indexer::Config {
            database: beatstream_primitives::db::DatabaseArgs::new(db.url().to_owned()),
            rpc: beatstream_primitives::rpc::RpcArgs {
                rpc_timeout_secs: 10,
                ..chain.anvil.endpoint_url().into()
            },
            options: beatstream_indexer::Options {
                reorg_window: 64,
                range_max: 10_000,
                poll_interval_ms: 50,
                ..beatstream_indexer::Options::new(chain.deployment_file.path().to_owned())
            },
        },
        indexer_metrics.clone(),
        indexer_stop.clone(),
    ));

    let artist = chain.anvil.signer(1).address();
    let listener = chain.anvil.signer(3);
    chain.fund(&listener, 50 * USDC).await?;
    let player = Player::new(&chain, listener, 1).await?;
    store_grant(&pool, &chain, &player).await?;
    let head = chain.head().await? as i64;
    wait("the indexer to reach the head", 60, || async {
        Ok(indexer_metrics.indexed.get() >= head)
    })
    .await?;
    store_voucher(&pool, &chain, &player, artist, 5 * USDC).await?;

    // The leader: `beatstream keeper`, which stops itself between deciding the batch and journaling it.
    let log = tempfile::NamedTempFile::new()?;
    let hung = Command::new(env!("CARGO_BIN_EXE_beatstream"))
        .args([
            "keeper",
            "--database-url",
            db.url(),
            "--rpc-url",
            chain.anvil.endpoint_url().as_str(),
        ])
        .arg("--deployment")
        .arg(chain.deployment_file.path())
        .args([
            "--keeper-id",
            "hung",
            "--keeper-payee-threshold",
            "1",
            "--keeper-book-threshold",
            "1",
        ])
        .args([
            "--keeper-min-item-value",
            "1",
            "--keeper-confirmations",
            "0",
            "--keeper-poll-ms",
            "100",
        ])
        .args(["--keeper-lease-secs", "2"])
        .env("BEATSTREAM_KEEPER_PRIVATE_KEY", chain.anvil.private_key_hex(KEEPER))
        .env("BEATSTREAM_KEEPER_FAIL_POINT", "stop-before-journal")
        .env("RUST_LOG", "beatstream::keeper=info")
        .stdout(Stdio::null())
        .stderr(log.reopen()?)
        .spawn()?;
    // Killed on every way out of this test, failures included: a stopped keeper left behind outlives the run.
    let mut hung = KillOnDrop(hung);
    let pid = hung.0.id();
    wait("the leader to stop itself before journaling", 60, || async {
        let state = state(pid)?;
        eyre::ensure!(state != 'Z', "the keeper exited");
        Ok(state == 'T')
    })
    .await?;
    // It decided under epoch 1 and journaled nothing; its lease runs out while it is stopped.
    let (holder, epoch): (String, i64) =
        sqlx::query_as("SELECT holder, epoch FROM keeper_lease").fetch_one(&pool).await?;
    assert_eq!((holder.as_str(), epoch), ("hung", 1));
    assert!(batches(&pool).await?.is_empty());

    // The standby, in this process: it takes over only once the lease has lapsed, and settles the voucher.
    let mut options = Options {
        signer: SignerArgs {
            private_key: Some(chain.anvil.private_key_hex(KEEPER)),
            ..Default::default()
        },
        keeper_id: Some("standby".into()),
        ..Default::default()
    };
    (options.payee_threshold, options.book_threshold, options.min_item_value) = (1, 1, 1);
    (options.confirmations, options.poll_ms, options.lease_secs) = (0, 100, 2);
    let metrics = Metrics::new();
    let stop = CancellationToken::new();
    let standby = tokio::spawn(beatstream_keeper::run_with_metrics(
        beatstream_keeper::Config {
            database: beatstream_primitives::db::DatabaseArgs::new(db.url().to_owned()),
            rpc: chain.anvil.endpoint_url().into(),
            deployment: chain.deployment_file.path().to_owned(),
            options,
        },
        metrics.clone(),
        stop.clone(),
    ));
    wait("the standby to take over", 30, || async { Ok(metrics.leader.get() == 1) }).await?;
    let lapsed: bool =
        sqlx::query_scalar("SELECT holder = 'standby' AND epoch = 2 FROM keeper_lease")
            .fetch_one(&pool)
            .await?;
    assert!(lapsed, "the standby leads under epoch 2");
    assert_eq!(state(pid)?, 'T', "the old leader is still stopped");
    wait("the standby to settle", 30, || async {
        Ok(settled(&chain, &player, artist).await? >= 5 * USDC
            && batches(&pool).await?.iter().any(|b| b.3 == "confirmed"))
    })
    .await?;
    let settled_by_standby = [("standby".to_owned(), 2, 0, "confirmed".to_owned())];
    assert_eq!(batches(&pool).await?, settled_by_standby);

    // The old leader resumes where it stopped: its journal write under epoch 1 is refused, and it stands by.
    signal(&hung.0, libc::SIGCONT)?;
    wait("the old leader's stale journal write to be refused", 30, || async {
        eyre::ensure!(state(pid)? != 'Z', "the keeper exited");
        let text = std::fs::read_to_string(log.path())?;
        Ok(text.contains("another keeper took over; standing by")
            || text.contains("lost the lease; standing by"))
    })
    .await?;
    let text = std::fs::read_to_string(log.path())?;
    assert!(text.contains("fail point: continued"), "{text}");
    assert!(
        text.contains("another keeper took over; standing by"),
        "not refused by the fence:\n{text}"
    );
    assert!(!text.contains("settling"), "the old leader journaled a batch:\n{text}");

    // Nothing of the old leader's reached the journal or the chain: one batch, one transaction, one settlement.
    assert_eq!(batches(&pool).await?, settled_by_standby);
    let sent = chain.provider.get_transaction_count(chain.anvil.signer(KEEPER).address()).await?;
    assert_eq!(sent, 1, "the keeper account sent more than the one settlement");
    assert_eq!(settled(&chain, &player, artist).await?, 5 * USDC);
    assert_eq!(metrics.leader.get(), 1);

    // The standby goes on leading; the old leader journals nothing of the next voucher either.
    store_voucher(&pool, &chain, &player, artist, 7 * USDC).await?;
    wait("the next voucher to settle", 30, || async {
        Ok(settled(&chain, &player, artist).await? >= 7 * USDC)
    })
    .await?;
    let keepers: Vec<(String, i64)> =
        sqlx::query_as("SELECT DISTINCT keeper_id, epoch FROM keeper_batches")
            .fetch_all(&pool)
            .await?;
    assert_eq!(keepers, [("standby".to_owned(), 2)]);

    hung.0.kill()?;
    hung.0.wait()?;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(20), standby).await???;
    indexer_stop.cancel();
    indexer.await??;
    Ok(())
}

/// A child process killed (SIGKILL, then reaped) when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
