//! Keeper: claims stored vouchers in batches and submits `settleBatch` to the vault,
//! one active keeper at a time.
//!
//! Not built yet: [`run`] returns [`Error::NotBuilt`].

mod config;
mod error;

pub use config::Config;
pub use error::{Error, Result};

use tokio_util::sync::CancellationToken;

/// Runs the keeper until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let _ = (config, shutdown);
    Err(Error::NotBuilt)
}
