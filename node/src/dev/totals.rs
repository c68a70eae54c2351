//! What the demo reads back from the database: that the indexer caught up, and the running totals it prints.

use std::{
    io::IsTerminal,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use alloy::{primitives::U256, providers::Provider};
use beatstream_primitives::units::format_usdc;
use beatstream_sim::audio::AudioCounters;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Waits (a minute at most) until the indexer has reached the chain's current head.
pub(super) async fn wait_indexed(database_url: &str, rpc: &Url) -> eyre::Result<()> {
    let pool = beatstream_primitives::db::connect(database_url).await?;
    let provider = beatstream_primitives::rpc::provider(&rpc.clone().into())?;
    let head = provider.get_block_number().await? as i64;
    for _ in 0..600 {
        let indexed: Option<i64> = sqlx::query_scalar("SELECT max(block_number) FROM chain_cursor")
            .fetch_one(&pool)
            .await?;
        if indexed.unwrap_or(-1) >= head {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eyre::bail!("the indexer did not reach block {head} within a minute")
}

/// Prints live totals every two seconds until `shutdown`, with the players' audio when they listen.
pub(super) async fn totals(
    database_url: &str,
    audio: Option<Arc<AudioCounters>>,
    shutdown: CancellationToken,
) -> eyre::Result<()> {
    let pool = beatstream_primitives::db::connect(database_url).await?;
    let tty = std::io::stdout().is_terminal();
    let mut last: Option<(U256, std::time::Instant)> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        let row: Result<(i64, String, String, i64), _> = sqlx::query_as(
            "SELECT (SELECT count(*) FROM sessions WHERE ended_at IS NULL),
                    (SELECT coalesce(sum(cumulative), 0)::text FROM vouchers),
                    (SELECT coalesce(sum(earned_total + fees_total), 0)::text FROM payee_earnings),
                    (SELECT count(*) FROM keeper_batches WHERE status = 'confirmed')",
        )
        .fetch_one(&pool)
        .await;
        let Ok((live, vouched, settled, txs)) = row else { continue };
        let vouched: U256 = vouched.parse().unwrap_or_default();
        let settled: U256 = settled.parse().unwrap_or_default();
        let now = std::time::Instant::now();
        let rate = last.map(|(v, t)| {
            let secs = now.duration_since(t).as_secs_f64().max(0.001);
            (vouched.saturating_sub(v).to::<u128>() as f64 / 1e6) / secs
        });
        last = Some((vouched, now));
        let mut line = format!(
            "live sessions {live:>4} | streamed {} USDC ({:.4} USDC/s) | settled on-chain {} USDC in {txs} txs",
            format_usdc(vouched),
            rate.unwrap_or_default(),
            format_usdc(settled),
        );
        if let Some(audio) = &audio {
            line.push_str(&format!(
                " | audio verified {} s of {} keys, {} failed",
                audio.verified.load(Ordering::Relaxed),
                audio.keys.load(Ordering::Relaxed),
                audio.failed(),
            ));
        }
        if tty {
            print!("\r{line}   ");
            use std::io::Write;
            let _ = std::io::stdout().flush();
        } else {
            println!("{line}");
        }
    }
}
