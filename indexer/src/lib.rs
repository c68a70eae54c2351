//! Indexer: mirrors BeatStream contract events from the chain into Postgres, so that
//! everything mirrored can be rebuilt by re-indexing from the deployment block.
//!
//! Not built yet: [`run`] returns [`Error::NotBuilt`].

mod config;
mod error;

pub use config::Config;
pub use error::{Error, Result};

use tokio_util::sync::CancellationToken;

/// Runs the indexer until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let _ = (config, shutdown);
    Err(Error::NotBuilt)
}
