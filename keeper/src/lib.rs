//! Keeper: settles the relay's stored vouchers on-chain in batches, one active keeper at a time.
//!
//! Each step, the active keeper follows every open transaction of its Postgres journal to its end (receipt,
//! confirmation depth, reorg, drop, fee bump, nonce freed) and then, when value is due (a payee's or the book's
//! threshold, the maximum interval, a listener's withdrawal request or a closing settlement window), claims the
//! most valuable vouchers that fit the gas budget, drops what a simulation says the vault would skip, journals the
//! signed transaction and only then broadcasts it. `docs/KEEPER.md` explains the design and its operation.

mod book;
mod chain;
mod config;
mod db;
mod error;
mod leader;
mod metrics;
mod policy;
mod signer;
mod step;

pub use config::{Config, FailPoint, Options, SignerArgs};
pub use error::{Error, Result};
pub use metrics::Metrics;

use std::time::{Duration, Instant};

use beatstream_primitives::Deployment;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    chain::Chain,
    config::Target,
    db::{Db, Journal},
    leader::Leader,
    step::Keeper,
};

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
    let Config { database_url, rpc_url, options } = config;
    options.validate()?;
    let signer = signer::load(&options.signer)?;
    let deployment = Deployment::load(&options.deployment)?;
    let chain = Chain::connect(&rpc_url, Duration::from_secs(15)).await?;
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
    let db = Db::connect(&database_url).await?;

    if let Some(addr) = options.http {
        let (metrics, shutdown) = (metrics.clone(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = metrics::serve(addr, metrics, shutdown).await {
                warn!(target: "beatstream::keeper", error = %e, "http endpoint stopped");
            }
        });
    }

    let keeper_id = options
        .keeper_id
        .clone()
        .unwrap_or_else(|| format!("keeper-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
    let balance = chain.balance(sender).await?;
    info!(target: "beatstream::keeper", %keeper_id, %sender, vault = %target.vault, chain_id = target.chain_id, %balance, "keeper starting");
    if balance.is_zero() {
        warn!(target: "beatstream::keeper", %sender, "the keeper account has no gas money");
    }

    let mut leader = Leader::new(
        database_url,
        keeper_id.clone(),
        target.chain_id,
        target.vault,
        Duration::from_secs(options.lease_secs),
    );
    let poll = options.poll();
    let mut keeper = Keeper {
        journal: Journal::new(&db, target.chain_id, sender, keeper_id),
        db: db.clone(),
        chain,
        signer,
        target,
        fail_point: options.fail_point,
        options,
        metrics: metrics.clone(),
        last_batch_at: Instant::now(),
        due_since: None,
        wallets: Default::default(),
    };

    let mut failures = 0u32;
    let mut failing_since: Option<Instant> = None;
    let stall_after = Duration::from_secs(keeper.options.stall_secs);
    let result = loop {
        let step = match leader.ensure().await {
            Ok(Some(epoch)) => {
                metrics.leader.set(1);
                keeper.step(epoch).await
            }
            Ok(None) => {
                metrics.leader.set(0);
                Ok(())
            }
            Err(e) => {
                metrics.leader.set(0);
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
                metrics.leader.set(0);
                poll
            }
            Err(e) => {
                failures += 1;
                metrics.errors.inc();
                warn!(target: "beatstream::keeper", error = %e, failures, "keeper step failed; retrying");
                metrics.set_last_error(Some(e.to_string()));
                // A keeper that cannot take a step cannot settle: past the stall time, /health says so.
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
            _ = shutdown.cancelled() => break Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
    };
    leader.step_down();
    metrics.leader.set(0);
    db.close().await;
    info!(target: "beatstream::keeper", "keeper stopped");
    result
}
