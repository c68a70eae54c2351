//! `/health`, `/ready` (503 until caught up) and `/metrics`.

use std::net::SocketAddr;

use axum::{Router, extract::State, http::StatusCode, routing::get};
use tokio_util::sync::CancellationToken;

use crate::{Metrics, Result};

/// Serves the endpoints on `addr` until `shutdown`.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<()> {
    let app = Router::new()
        .route(
            "/health",
            get(|State(m): State<Metrics>| async move {
                // Alive (the loop retries); the body says what it is retrying, if anything.
                m.last_error().map_or_else(|| "ok".to_owned(), |e| format!("retrying: {e}"))
            }),
        )
        .route(
            "/ready",
            get(|State(m): State<Metrics>| async move {
                if m.is_ready() {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "catching up")
                }
            }),
        )
        .route("/metrics", get(|State(m): State<Metrics>| async move { m.render() }))
        .with_state(metrics);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(target: "beatstream::indexer", %addr, "serving /health, /ready, /metrics");
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    Ok(())
}
