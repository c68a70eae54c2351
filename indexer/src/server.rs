//! `/health` (the loop turns), `/ready` (Postgres and the RPC endpoint answer, and the indexer is within
//! `--indexer-ready-max-lag` blocks of its target) and `/metrics`.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use beatstream_primitives::health::{CHECK_TIMEOUT, Check, Readiness};
use tokio::time::{error::Elapsed, timeout};
use tokio_util::sync::CancellationToken;

use crate::{ChainSource, Metrics, Result, db::Db};

/// What the endpoints look at.
pub(crate) struct Probe<S> {
    pub(crate) metrics: Metrics,
    pub(crate) db: Db,
    pub(crate) source: Arc<S>,
    pub(crate) chain_id: i64,
    /// `--confirmations`: the indexer's target is the head minus these.
    pub(crate) confirmations: u64,
    /// `--indexer-ready-max-lag`.
    pub(crate) max_lag: u64,
}

// Not derived: that would ask for `S: Clone`.
impl<S> Clone for Probe<S> {
    fn clone(&self) -> Self {
        Self {
            metrics: self.metrics.clone(),
            db: self.db.clone(),
            source: self.source.clone(),
            chain_id: self.chain_id,
            confirmations: self.confirmations,
            max_lag: self.max_lag,
        }
    }
}

/// Serves the endpoints on `addr` until `shutdown`.
pub(crate) async fn serve<S: ChainSource + 'static>(
    addr: SocketAddr,
    probe: Probe<S>,
    shutdown: CancellationToken,
) -> Result<()> {
    let app = Router::new()
        .route("/health", get(health::<S>))
        .route("/ready", get(ready::<S>))
        .route("/metrics", get(metrics::<S>))
        .with_state(probe);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(target: "beatstream::indexer", %addr, "serving /health, /ready, /metrics");
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    Ok(())
}

/// Liveness: `ok`, or `retrying: <error>` while the loop retries a failed step; 503 once the loop has shown no
/// progress for [`LIVENESS_WINDOW`](beatstream_primitives::health::LIVENESS_WINDOW).
async fn health<S>(State(p): State<Probe<S>>) -> Response {
    if let Err(stuck) = p.metrics.heartbeat.check() {
        return (StatusCode::SERVICE_UNAVAILABLE, stuck).into_response();
    }
    p.metrics
        .last_error()
        .map_or_else(|| "ok".to_owned(), |e| format!("retrying: {e}"))
        .into_response()
}

/// Readiness: the `database` (the cursor is read), the `rpc` endpoint (the head is read) and the `lag` between
/// them: at most `--indexer-ready-max-lag` blocks behind the head minus `--confirmations`.
async fn ready<S: ChainSource>(State(p): State<Probe<S>>) -> Response {
    let (cursor, head) = tokio::join!(
        timeout(CHECK_TIMEOUT, p.db.cursor(p.chain_id)),
        timeout(CHECK_TIMEOUT, p.source.head()),
    );
    let (database, cursor) = outcome("database", cursor);
    let (rpc, head) = outcome("rpc", head);
    let lag = match (cursor, head) {
        (Some(cursor), Some(head)) => {
            lag_check(cursor.map(|c| c.number), head, p.confirmations, p.max_lag)
        }
        _ => Check::fail("lag", "unknown without the database and the rpc endpoint"),
    };
    let readiness = Readiness::new(vec![database, rpc, lag]);
    let status = StatusCode::from_u16(readiness.status()).expect("200 or 503");
    (status, Json(readiness.to_json())).into_response()
}

/// A check from a probe's timed outcome, and the value it read if it passed.
fn outcome<T>(
    name: &'static str,
    timed: std::result::Result<Result<T>, Elapsed>,
) -> (Check, Option<T>) {
    match timed {
        Ok(Ok(value)) => (Check::pass(name), Some(value)),
        Ok(Err(e)) => (Check::fail(name, e.to_string()), None),
        Err(_) => {
            let error = format!("no answer within {} ms", CHECK_TIMEOUT.as_millis());
            (Check::fail(name, error), None)
        }
    }
}

/// Whether the last indexed block is close enough to the target (the head minus the confirmations).
fn lag_check(indexed: Option<u64>, head: u64, confirmations: u64, max_lag: u64) -> Check {
    let target = head.saturating_sub(confirmations);
    let Some(indexed) = indexed else {
        return Check::fail("lag", format!("nothing indexed yet; the target is block {target}"));
    };
    let behind = target.saturating_sub(indexed);
    if behind > max_lag {
        Check::fail(
            "lag",
            format!(
                "{behind} blocks behind the target {target} (at most {max_lag}: --indexer-ready-max-lag)"
            ),
        )
    } else {
        Check::pass_with("lag", format!("{behind} blocks behind the target {target}"))
    }
}

async fn metrics<S>(State(p): State<Probe<S>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], p.metrics.render()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_is_counted_from_the_head_minus_the_confirmations() {
        assert!(lag_check(Some(98), 100, 2, 0).passed());
        assert!(lag_check(Some(90), 100, 2, 8).passed());
        let far = lag_check(Some(89), 100, 2, 8);
        assert_eq!(
            far,
            Check::fail(
                "lag",
                "9 blocks behind the target 98 (at most 8: --indexer-ready-max-lag)"
            )
        );
        // A cursor above the target (a lagging node behind a load balancer) is not behind.
        assert!(lag_check(Some(120), 100, 2, 0).passed());
        assert_eq!(
            lag_check(None, 100, 2, 8),
            Check::fail("lag", "nothing indexed yet; the target is block 98")
        );
    }
}
