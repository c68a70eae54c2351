//! Nothing acked is lost: `kill -9` of a relay process under load, restart, and every acked voucher is in the
//! database with a valid signature; the restarted relay carries on from it.
//!
//! The relay runs in a child process: this test binary re-executed with `child_relay` as the only test, which serves
//! the relay library with the settings passed in `BEATSTREAM_TEST_CHILD_RELAY`.

use std::{
    collections::HashMap,
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::Duration,
};

use alloy::primitives::{Address, U256};
use beatstream_primitives::eip712;
use beatstream_stream_relay::protocol::ServerFrame;
use beatstream_testkit::TestDb;
use tokio_util::sync::CancellationToken;

use crate::harness::*;

const CHILD_ENV: &str = "BEATSTREAM_TEST_CHILD_RELAY";
const PLAYERS: usize = 40;

/// Not a test of its own: the entry point of the child relay process (does nothing without its variable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by kill_9_under_load_loses_no_acked_voucher in a child process"]
async fn child_relay() -> eyre::Result<()> {
    let Ok(settings) = std::env::var(CHILD_ENV) else { return Ok(()) };
    let parts: Vec<&str> = settings.split(' ').collect();
    let (db_url, listen) = (parts[0], parts[1]);
    let mut cfg = beatstream_stream_relay::Config::new(db_url.to_owned(), no_rpc());
    if let [_, _, node, key] = parts.as_slice() {
        cfg.options.yellow.yellow_url = Some(node.parse()?);
        cfg.options.yellow.yellow_operator_key = Some((*key).to_owned());
    }
    cfg.options.listen = listen.parse()?;
    cfg.chain_id = Some(CHAIN_ID);
    cfg.vault = Some(vault());
    // `default-id` as the third word: the relay's own default id (host and port), as an operator runs it.
    cfg.options.relay_id = (parts.get(2) != Some(&"default-id")).then(|| "durability-relay".into());
    cfg.options.beat_ms = 50;
    cfg.options.grace_beats = 1_000;
    cfg.options.max_frames_per_sec = 1_000;
    let shutdown = CancellationToken::new();
    let cancel = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        term.recv().await;
        cancel.cancel();
    });
    beatstream_stream_relay::run(cfg, shutdown).await?;
    Ok(())
}

pub(crate) struct ChildRelay {
    pub(crate) child: Child,
    addr: SocketAddr,
}

impl ChildRelay {
    pub(crate) async fn spawn(db: &TestDb) -> eyre::Result<Self> {
        Self::spawn_with(db, "").await
    }

    /// A child relay; `extra` is `"<yellow url> <operator key>"` to turn the Yellow transport on.
    pub(crate) async fn spawn_with(db: &TestDb, extra: &str) -> eyre::Result<Self> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        Self::spawn_on(db, addr, extra).await
    }

    /// A child relay listening on `addr`; `extra` as for [`spawn_with`](Self::spawn_with), or `default-id`.
    pub(crate) async fn spawn_on(db: &TestDb, addr: SocketAddr, extra: &str) -> eyre::Result<Self> {
        let settings = format!("{} {addr} {extra}", db.url());
        let child = Command::new(std::env::current_exe()?)
            .args(["--exact", "durability::child_relay", "--ignored", "--nocapture"])
            .env(CHILD_ENV, settings.trim_end())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let relay = Self { child, addr };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(relay);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eyre::bail!("child relay did not start listening on {addr}")
    }

    pub(crate) fn as_relay(&self) -> Relay {
        Relay {
            addr: self.addr,
            shutdown: CancellationToken::new(),
            task: tokio::spawn(async { Ok(()) }),
        }
    }
}

/// Waits until no other session of the test database is inside a transaction. A relay killed with `-9` may have
/// sent a COMMIT that Postgres has not processed yet: it still commits (the bytes are in the backend's socket), so
/// what is stored may grow for a moment after the kill. Reading the stored state before that races the commit.
pub(crate) async fn wait_for_killed_commits(db: &TestDb) -> eyre::Result<()> {
    for _ in 0..400 {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND (state = 'active' OR state LIKE 'idle in transaction%')",
        )
        .fetch_one(db.pool())
        .await?;
        if open == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    eyre::bail!("transactions of the killed relay still open after 10 s")
}

impl Drop for ChildRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acked_voucher() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let alice = scene.alice.payee;
    let mut players = Vec::new();
    for _ in 0..PLAYERS {
        let p = Player::new(1_000_000_000);
        seed_listener(db.pool(), p.listener(), 1_000_000_000, 0).await?;
        players.push(p);
    }
    let players: Vec<std::sync::Arc<Player>> =
        players.into_iter().map(std::sync::Arc::new).collect();

    let mut relay = ChildRelay::spawn(&db).await?;
    let target = relay.as_relay();
    // Each player pays every 50 ms beat and records the highest cumulative acked until the socket dies.
    let tasks: Vec<_> = players
        .iter()
        .cloned()
        .map(|p| {
            let url = target.url();
            tokio::spawn(async move {
                let mut c = Client::connect_url(&url).await?;
                c.hello(&p).await?;
                let (_, first) = c.play(1).await?;
                c.send(&p.voucher(alice, first.to())).await?;
                let mut acked = U256::ZERO;
                let mut sent = first;
                loop {
                    match c.event_within(10).await {
                        Ok(Event::Frame(ServerFrame::Beat { owed, .. })) => {
                            sent = owed.parse()?;
                            if c.send(&p.voucher(alice, sent.to())).await.is_err() {
                                break;
                            }
                        }
                        Ok(Event::Frame(ServerFrame::Ack { cumulative, .. })) => {
                            acked = acked.max(cumulative.parse()?)
                        }
                        Ok(Event::Frame(other)) => eyre::bail!("unexpected {other:?}"),
                        Ok(Event::Closed(_)) | Err(_) => break,
                    }
                }
                eyre::Ok((acked, sent))
            })
        })
        .collect();

    // Under load (40 sessions × 20 vouchers/s), kill the process without warning.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let acked_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM vouchers").fetch_one(db.pool()).await?;
    assert!(acked_before as usize >= PLAYERS / 2, "load is running ({acked_before} pairs stored)");
    relay.child.kill()?; // SIGKILL
    relay.child.wait()?;

    let mut acked: HashMap<Address, (U256, U256)> = HashMap::new();
    for (p, task) in players.iter().zip(tasks) {
        acked.insert(p.listener(), task.await??);
    }
    let total_acks: usize = acked.values().filter(|(a, _)| !a.is_zero()).count();
    assert_eq!(total_acks, PLAYERS, "every player had vouchers acked before the kill");

    // Every acked voucher is stored (or a newer one), with a signature the session key made.
    for p in &players {
        let (acked, sent) = acked[&p.listener()];
        let (stored, sig) = stored_voucher(db.pool(), p.grant_id(), alice).await?.expect("stored");
        assert!(stored >= acked, "acked {acked} but only {stored} stored");
        assert!(stored <= sent, "stored {stored} was never sent (sent up to {sent})");
        let digest = domain().voucher_digest(p.grant_id(), alice, stored);
        assert_eq!(eip712::recover(digest, &sig)?, p.key.address());
    }

    // Restart: the dead run's sessions are closed, and players carry on from what is stored.
    relay = ChildRelay::spawn(&db).await?;
    let orphans: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE ended_at IS NULL")
        .fetch_one(db.pool())
        .await?;
    assert_eq!(orphans, 0);
    let target = relay.as_relay();
    for p in players.iter().take(5) {
        let (stored, _) = stored_voucher(db.pool(), p.grant_id(), alice).await?.unwrap();
        let mut c = Client::connect(&target).await?;
        assert_eq!(c.hello(p).await?, U256::from(1_000_000_000u64) - stored);
        let (_, owed) = c.play(1).await?;
        assert_eq!(owed, stored + U256::from(100));
        c.pay(p, alice, owed.to()).await?;
    }
    Ok(())
}

/// `kill -9` at moments chosen by progress, not by the clock, round after round with a restart between kills:
///
/// - after the clients have received a given number of acks (a different number each round);
/// - inside a group commit: the test holds `vouchers` locked (`SHARE ROW EXCLUSIVE`, which the writers' upsert
///   must wait for) until every writer of the relay is parked on it in pg_stat_activity, kills the relay there, and
///   only then lets go.
///
/// After each kill, every voucher acked to a client is stored (or a newer one it sent), with its session key's
/// signature. After each restart, resuming pays nothing twice: `ready` is the funds less exactly what is stored,
/// and the new session's first beat owes one beat more than what is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_moments_chosen_by_progress_loses_and_repays_nothing() -> eyre::Result<()> {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    const PLAYERS: usize = 20;
    const KILLS: usize = 6;
    const FUNDS: u64 = 1_000_000_000;
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let alice = scene.alice.payee;
    let mut players = Vec::new();
    for _ in 0..PLAYERS {
        let p = Player::new(FUNDS);
        seed_listener(db.pool(), p.listener(), FUNDS, 0).await?;
        players.push(Arc::new(p));
    }
    // The writers the players' listeners are sharded to (as `Writers::submit` shards them).
    let writers = beatstream_stream_relay::config::DEFAULT_WRITERS;
    let busy_writers = players
        .iter()
        .map(|p| p.listener()[19] as usize % writers)
        .collect::<std::collections::HashSet<_>>()
        .len() as i64;
    let mut stored: HashMap<Address, U256> = HashMap::new();
    let mut total_progress = 0;

    for round in 0..=KILLS {
        let mut relay = ChildRelay::spawn(&db).await?;
        let orphans: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sessions WHERE ended_at IS NULL")
                .fetch_one(db.pool())
                .await?;
        assert_eq!(orphans, 0, "round {round}: the dead run's sessions are closed");
        let url = relay.as_relay().url();
        let acks = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = players
            .iter()
            .cloned()
            .map(|p| {
                let url = url.clone();
                let acks = acks.clone();
                let base = stored.get(&p.listener()).copied().unwrap_or_default();
                tokio::spawn(async move {
                    let mut c = Client::connect_url(&url).await?;
                    // Resuming pays nothing twice: what is stored is spent, and the session carries on from it.
                    let ready = c.hello(&p).await?;
                    eyre::ensure!(
                        ready == U256::from(FUNDS) - base,
                        "ready {ready}, stored {base}"
                    );
                    let (_, first) = c.play(1).await?;
                    eyre::ensure!(
                        first == base + U256::from(100),
                        "first beat owes {first}, stored {base}"
                    );
                    let _ = c.send(&p.voucher(alice, first.to())).await;
                    let (mut acked, mut sent) = (U256::ZERO, first);
                    // Until the socket dies, pay every beat; a failed send does not stop the reading, so every ack
                    // the relay wrote before it died is counted.
                    loop {
                        match c.event_within(30).await {
                            Ok(Event::Frame(ServerFrame::Beat { owed, .. })) => {
                                let owed: U256 = owed.parse()?;
                                if c.send(&p.voucher(alice, owed.to())).await.is_ok() {
                                    sent = owed;
                                }
                            }
                            Ok(Event::Frame(ServerFrame::Ack { cumulative, .. })) => {
                                acked = acked.max(cumulative.parse()?);
                                acks.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(Event::Frame(other)) => eyre::bail!("unexpected {other:?}"),
                            Ok(Event::Closed(_)) | Err(_) => break,
                        }
                    }
                    eyre::Ok((acked, sent))
                })
            })
            .collect();

        // Progress first: this round's number of acks received by the clients.
        let target = 60 + 25 * round;
        let until = tokio::time::Instant::now() + Duration::from_secs(60);
        while acks.load(Ordering::SeqCst) < target {
            eyre::ensure!(
                tokio::time::Instant::now() < until,
                "round {round}: only {} of {target} acks after 60 s",
                acks.load(Ordering::SeqCst)
            );
            eyre::ensure!(
                !tasks.iter().all(|t| t.is_finished()),
                "round {round}: every client stopped"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if round == KILLS {
            // The last run is not killed: it shows the relay carried on from the last kill.
            drop(relay);
            for task in tasks {
                task.await??;
            }
            break;
        }
        let inside_commit = round % 2 == 1;
        let lock = if inside_commit {
            let mut lock = db.pool().begin().await?;
            sqlx::query("LOCK TABLE vouchers IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *lock)
                .await?;
            crate::guard::wait_for_lock_waiters(&db, busy_writers).await?;
            // Every writer is parked between its state read and its upsert: nothing may be acked from here on.
            // The pause lets whatever the relay did write reach the clients before the kill.
            tokio::time::sleep(Duration::from_millis(100)).await;
            Some(lock)
        } else {
            None
        };
        relay.child.kill()?; // SIGKILL
        relay.child.wait()?;
        if let Some(lock) = lock {
            // The writers' statements parked on the lock never complete: their connections are ended before the
            // lock goes, as when the database connection is lost with the process. (Released instead, a held-lease
            // write, which is one autocommit statement already sent, would still commit and hide an ack sent
            // before it.)
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'",
            )
            .execute(db.pool())
            .await?;
            lock.rollback().await?;
        }
        total_progress += acks.load(Ordering::SeqCst);

        let mut acked = HashMap::new();
        for (p, task) in players.iter().zip(tasks) {
            acked.insert(p.listener(), task.await??);
        }
        wait_for_killed_commits(&db).await?;
        for p in &players {
            let (acked, sent) = acked[&p.listener()];
            let (now, sig) = stored_voucher(db.pool(), p.grant_id(), alice)
                .await?
                .unwrap_or((U256::ZERO, Vec::new()));
            let before = stored.get(&p.listener()).copied().unwrap_or_default();
            let how = if inside_commit { "inside a group commit" } else { "after acks" };
            assert!(now >= acked, "kill {round} ({how}): acked {acked} but only {now} stored");
            assert!(now <= sent, "kill {round} ({how}): stored {now} was never sent ({sent})");
            assert!(now >= before, "kill {round} ({how}): stored fell from {before} to {now}");
            if !now.is_zero() {
                let digest = domain().voucher_digest(p.grant_id(), alice, now);
                assert_eq!(eip712::recover(digest, &sig)?, p.key.address());
            }
            stored.insert(p.listener(), now);
        }
    }
    assert!(total_progress >= 60 * KILLS, "{total_progress} acks across {KILLS} kills");
    Ok(())
}
