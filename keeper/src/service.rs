//! The keeper service: start-up checks, then the leader loop that takes a step whenever this keeper holds the lease.
//!
//! Start-up fails, saying what to change, when a setting makes no sense, the key cannot be loaded, the RPC endpoint
//! is another chain, the account is not a settler of the vault, the database is unreachable or the HTTP address
//! cannot be bound. Once running, a failed step is retried with backoff (and `/ready` reports a stall past
//! `--keeper-stall-secs`); only a shutdown, a test's fail point or the HTTP server stopping ends the loop.

use std::time::{Duration, Instant};

use beatstream_primitives::Deployment;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    Config, Error, Metrics, Result,
    chain::Chain,
    config::Target,
    db::Db,
    http::{self, Http, Probe},
    leader::Leader,
    signer,
    step::Keeper,
};

/// How often the leader loop reads the keeper account's balance for `beatstream_keeper_balance_wei`.
const BALANCE_EVERY: Duration = Duration::from_secs(30);

/// Runs the keeper until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    run_with_metrics(config, Metrics::new(), shutdown).await
}

/// [`run`], reporting into `metrics` (tests and `beatstream node` read them).
pub async fn run_with_metrics(
    config: Config,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<()> {
    let Config { database, rpc, deployment, options } = config;
    options.validate()?;
    database.validate(true)?;
    let signer = signer::load(&options.signer).await?;
    let deployment = Deployment::load(&deployment)?;
    let chain = Chain::connect(&rpc)?;
    let actual = chain.chain_id().await?;
    if actual != deployment.chain_id {
        return Err(Error::WrongChain { expected: deployment.chain_id, actual });
    }
    let sender = signer.address();
    // Only the vault's settlers may settle (v2): a keeper that is not one would fail every step. Say so now.
    chain.ensure_settler(deployment.contracts.vault, sender).await?;
    let target = Target {
        chain_id: deployment.chain_id,
        vault: deployment.contracts.vault,
        settlement_window: deployment.settlement_window,
    };
    let db = Db::connect(&database).await?;

    let mut http = match options.http {
        Some(addr) => {
            let probe = Probe { metrics: metrics.clone(), db: db.clone(), chain: chain.clone() };
            Some(Http::start(addr, http::router(probe), shutdown.clone()).await?)
        }
        None => None,
    };

    let keeper_id = options
        .keeper_id
        .clone()
        .unwrap_or_else(|| format!("keeper-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
    let balance = chain.balance(sender).await?;
    info!(target: "beatstream::keeper", %keeper_id, %sender, signer = %signer.backend(), vault = %target.vault, chain_id = target.chain_id, %balance, "keeper starting");
    if balance.is_zero() {
        warn!(target: "beatstream::keeper", %sender, "the keeper account has no gas money");
    }
    metrics.balance.set(wei(balance));
    let mut balance_read = Instant::now();
    let balance_chain = chain.clone();

    let mut leader = Leader::new(
        database,
        keeper_id.clone(),
        target.chain_id,
        target.vault,
        Duration::from_secs(options.lease_secs),
    );
    let poll = options.poll();
    let stall_after = Duration::from_secs(options.stall_secs);
    let mut keeper =
        Keeper::new(db.clone(), chain, signer, target, options, keeper_id, metrics.clone());

    let mut failures = 0u32;
    let mut failing_since: Option<Instant> = None;
    let result = loop {
        metrics.heartbeat.beat();
        if balance_read.elapsed() >= BALANCE_EVERY {
            balance_read = Instant::now();
            // A failed read leaves the last value; the step's own RPC errors say what is wrong.
            if let Ok(balance) = balance_chain.balance(sender).await {
                metrics.balance.set(wei(balance));
            }
        }
        let step = match leader.ensure().await {
            Ok(Some(epoch)) => {
                metrics.set_lease(Ok(true));
                keeper.step(epoch).await
            }
            Ok(None) => {
                metrics.set_lease(Ok(false));
                Ok(())
            }
            Err(e) => {
                metrics.set_lease(Err(e.to_string()));
                Err(e)
            }
        };
        let wait = match step {
            Ok(()) => {
                failures = 0;
                failing_since = None;
                metrics.set_last_error(None);
                poll
            }
            Err(e @ Error::FailPoint(_)) => break Err(e),
            Err(Error::LostLease(epoch)) => {
                warn!(target: "beatstream::keeper", epoch, "another keeper took over; standing by");
                leader.step_down();
                metrics.set_lease(Ok(false));
                poll
            }
            Err(e) => {
                failures += 1;
                metrics.errors.inc();
                warn!(target: "beatstream::keeper", error = %e, failures, "keeper step failed; retrying");
                metrics.set_last_error(Some(e.to_string()));
                // A keeper that cannot take a step cannot settle: past the stall time, /ready says so.
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() > stall_after {
                    metrics.set_stall(Some(format!(
                        "every step has failed for {} s: {e}",
                        since.elapsed().as_secs()
                    )));
                }
                // Back off up to ten seconds; every step starts by reconciling with the chain.
                (poll * 2u32.saturating_pow(failures.min(6))).min(Duration::from_secs(10))
            }
        };
        tokio::select! {
            // A shutdown first: it also ends the HTTP server, which is then no failure.
            biased;
            _ = shutdown.cancelled() => break Ok(()),
            e = stopped(&mut http) => {
                warn!(target: "beatstream::keeper", error = %e, "the HTTP endpoint stopped; stopping the keeper");
                break Err(e);
            }
            _ = tokio::time::sleep(wait) => {}
        }
    };
    leader.step_down();
    metrics.leader.set(0);
    db.close().await;
    info!(target: "beatstream::keeper", "keeper stopped");
    result
}

/// A balance as the gauge holds it (beyond `u128` wei, which no account holds, it saturates).
fn wei(balance: alloy::primitives::U256) -> f64 {
    u128::try_from(balance).map_or(f64::MAX, |b| b as f64)
}

/// Why the HTTP server stopped; never resolves when there is none.
async fn stopped(http: &mut Option<Http>) -> Error {
    match http {
        Some(http) => http.stopped().await,
        None => std::future::pending().await,
    }
}
