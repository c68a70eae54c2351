//! The keeper's HTTP endpoint: `/health` (liveness: the leader loop turns), `/ready` (Postgres, the RPC endpoint,
//! the lease, settlement not stalled) and `/metrics`.
//!
//! It is a critical part of the keeper, not a side show: an address that cannot be bound fails the start, and a
//! server that stops while the keeper runs stops the keeper with its cause (`service.rs` waits on [`Http::stopped`]).

use std::{io, net::SocketAddr};

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use beatstream_primitives::health::{Check, Readiness};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{Error, Metrics, Result, chain::Chain, db::Db};

/// The running HTTP server.
#[derive(Debug)]
pub(crate) struct Http {
    task: JoinHandle<Result<()>>,
}

impl Http {
    /// Binds `addr` (failing at once when it cannot) and serves `app` (see [`router`]) until `shutdown`.
    pub(crate) async fn start(
        addr: SocketAddr,
        app: Router,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        info!(target: "beatstream::keeper", %addr, "serving /health, /ready, /metrics");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
            Ok(())
        });
        Ok(Self { task })
    }

    /// Waits until the server stops, and says why. Only a shutdown stops it in order; the caller checks for that
    /// first.
    pub(crate) async fn stopped(&mut self) -> Error {
        match (&mut self.task).await {
            Ok(Ok(())) => Error::Http(io::Error::other("the server stopped")),
            Ok(Err(e)) => e,
            Err(e) => Error::Http(io::Error::other(format!("the server task ended: {e}"))),
        }
    }
}

/// What the endpoints look at.
#[derive(Clone)]
pub(crate) struct Probe {
    pub(crate) metrics: Metrics,
    pub(crate) db: Db,
    pub(crate) chain: Chain,
}

/// The routes.
pub(crate) fn router(probe: Probe) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(probe)
}

/// Liveness: `ok (leader|standby)`, with the error being retried if any, while the leader loop turns; 503 once it
/// has shown no progress for [`LIVENESS_WINDOW`](beatstream_primitives::health::LIVENESS_WINDOW).
async fn health(State(p): State<Probe>) -> Response {
    if let Err(stuck) = p.metrics.heartbeat.check() {
        return (StatusCode::SERVICE_UNAVAILABLE, stuck).into_response();
    }
    let role = if p.metrics.leader.get() == 1 { "leader" } else { "standby" };
    match p.metrics.last_error() {
        Some(e) => format!("ok ({role}), retrying: {e}"),
        None => format!("ok ({role})"),
    }
    .into_response()
}

/// Readiness: Postgres and the RPC endpoint answer, the last election round worked (leading, or standing by while
/// another keeper leads), and settlement is not stalled (`--keeper-stall-secs`).
async fn ready(State(p): State<Probe>) -> Response {
    let (database, rpc) =
        tokio::join!(Check::run("database", p.db.ping()), Check::run("rpc", p.chain.head()));
    let lease = match p.metrics.lease() {
        Some(Ok(true)) => Check::pass_with("lease", "leader"),
        Some(Ok(false)) => Check::pass_with("lease", "standby"),
        Some(Err(e)) => Check::fail("lease", e),
        None => Check::fail("lease", "no election round yet"),
    };
    let settlement = match p.metrics.stall() {
        Some(stall) => Check::fail("settlement", format!("stalled: {stall}")),
        None => Check::pass("settlement"),
    };
    let readiness = Readiness::new(vec![database, rpc, lease, settlement]);
    let status = StatusCode::from_u16(readiness.status()).expect("200 or 503");
    (status, Json(readiness.to_json())).into_response()
}

async fn metrics(State(p): State<Probe>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], p.metrics.render()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_address_in_use_fails_the_start() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = Http::start(addr, Router::new(), CancellationToken::new()).await.unwrap_err();
        assert!(matches!(err, Error::Http(_)), "{err}");
    }

    #[tokio::test]
    async fn a_server_that_stops_says_why() {
        let mut failed = Http {
            task: tokio::spawn(async { Err(Error::Http(io::Error::other("accept failed"))) }),
        };
        assert_eq!(failed.stopped().await.to_string(), "http endpoint: accept failed");
        let mut ended = Http { task: tokio::spawn(async { Ok(()) }) };
        assert!(ended.stopped().await.to_string().contains("the server stopped"));
        let mut panicked = Http { task: tokio::spawn(async { panic!("boom") }) };
        assert!(panicked.stopped().await.to_string().contains("panicked"));
    }
}
