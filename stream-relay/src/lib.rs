//! Stream relay: the WebSocket endpoint where players send signed per-second vouchers,
//! verified and stored in Postgres before they are acknowledged.
//!
//! Not built yet: [`run`] returns [`Error::NotBuilt`].

mod config;
mod error;

pub use config::Config;
pub use error::{Error, Result};

use tokio_util::sync::CancellationToken;

/// Runs the stream relay until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let _ = (config, shutdown);
    Err(Error::NotBuilt)
}
