//! The one shutdown signal handed to every service.

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Returns a token cancelled on the first SIGINT or SIGTERM; a second signal exits at once,
/// for when a graceful shutdown hangs.
pub(crate) fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!(target: "beatstream::node", "shutdown requested");
        cancel.cancel();
        wait_for_signal().await;
        warn!(target: "beatstream::node", "second signal, exiting without cleanup");
        std::process::exit(130);
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(error) => {
            warn!(target: "beatstream::node", %error, "no SIGTERM handler, only Ctrl-C stops");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
