//! Command-line and environment settings.

use url::Url;

/// Settings of the keeper; every flag can also come from its `BEATSTREAM_*` variable.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Postgres connection URL.
    #[arg(long, env = "BEATSTREAM_DATABASE_URL")]
    pub database_url: String,
    /// Ethereum JSON-RPC endpoint (http:// or ws://).
    #[arg(long, env = "BEATSTREAM_RPC_URL")]
    pub rpc_url: Url,
}
