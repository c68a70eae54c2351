//! GraphQL API: read-only queries over the Postgres mirror and voucher book, for
//! dashboards.
//!
//! Not built yet: [`run`] returns [`Error::NotBuilt`].

mod config;
mod error;

pub use config::Config;
pub use error::{Error, Result};

use tokio_util::sync::CancellationToken;

/// Runs the GraphQL API until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let _ = (config, shutdown);
    Err(Error::NotBuilt)
}
