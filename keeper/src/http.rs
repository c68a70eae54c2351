//! The keeper's HTTP endpoint: `/health` (503 while settlement is stalled) and `/metrics`.
//!
//! It is a critical part of the keeper, not a side show: an address that cannot be bound fails the start, and a
//! server that stops while the keeper runs stops the keeper with its cause (`service.rs` waits on [`Http::stopped`]).

use std::{io, net::SocketAddr};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{Error, Metrics, Result};

/// The running HTTP server.
#[derive(Debug)]
pub(crate) struct Http {
    task: JoinHandle<Result<()>>,
}

impl Http {
    /// Binds `addr` (failing at once when it cannot) and serves until `shutdown`.
    pub(crate) async fn start(
        addr: SocketAddr,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        info!(target: "beatstream::keeper", %addr, "serving /health, /metrics");
        let task = tokio::spawn(async move {
            axum::serve(listener, router(metrics))
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await?;
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

fn router(metrics: Metrics) -> Router {
    Router::new()
        .route(
            "/health",
            get(|State(m): State<Metrics>| async move {
                let role = if m.leader.get() == 1 { "leader" } else { "standby" };
                match m.stall() {
                    Some(stall) => (StatusCode::SERVICE_UNAVAILABLE, format!("stalled: {stall}")),
                    None => match m.last_error() {
                        Some(e) => (StatusCode::OK, format!("ok ({role}), retrying: {e}")),
                        None => (StatusCode::OK, format!("ok ({role})")),
                    },
                }
            }),
        )
        .route("/metrics", get(|State(m): State<Metrics>| async move { m.render() }))
        .with_state(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_address_in_use_fails_the_start() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = Http::start(addr, Metrics::new(), CancellationToken::new()).await.unwrap_err();
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
