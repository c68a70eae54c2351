//! Command-line and environment settings.

use std::{net::SocketAddr, path::PathBuf};

use url::Url;

use crate::{Error, Result};

/// Settings of the GraphQL API; every flag can also come from its `BEATSTREAM_*` variable.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Postgres connection URL (a read replica is fine: the API only reads).
    #[arg(long, env = "BEATSTREAM_DATABASE_URL")]
    pub database_url: String,
    /// Ethereum JSON-RPC endpoint; not used by the API itself (it reads the indexer's mirror), accepted so
    /// `beatstream node` can pass one configuration to every service.
    #[arg(long, env = "BEATSTREAM_RPC_URL")]
    pub rpc_url: Option<Url>,
    /// Everything else, shared with `beatstream node`.
    #[command(flatten)]
    pub options: Options,
}

/// The API's own settings.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Address to serve `/graphql` (POST queries, GET GraphiQL), `/graphql/ws` (subscriptions) and `/health` on.
    #[arg(long = "api-listen", env = "BEATSTREAM_API_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Chain whose mirror to serve [default: from the deployment file].
    #[arg(long = "api-chain-id", env = "BEATSTREAM_API_CHAIN_ID")]
    pub chain_id: Option<u64>,
    /// Deployment file to read the chain id from.
    #[arg(
        long = "api-deployment",
        env = "BEATSTREAM_DEPLOYMENT",
        default_value = "deployments/31337.json"
    )]
    pub deployment: PathBuf,
    /// Deepest selection nesting a query may have.
    #[arg(long, env = "BEATSTREAM_API_MAX_DEPTH", default_value_t = 10)]
    pub max_depth: usize,
    /// Highest complexity a query may have (each field counts 1, a list field its page size times its children).
    #[arg(long, env = "BEATSTREAM_API_MAX_COMPLEXITY", default_value_t = 20_000)]
    pub max_complexity: usize,
    /// Largest request body, in bytes.
    #[arg(long, env = "BEATSTREAM_API_MAX_BODY_BYTES", default_value_t = 32 * 1024)]
    pub max_body_bytes: usize,
    /// Postgres `statement_timeout` of every API query, in milliseconds.
    #[arg(long, env = "BEATSTREAM_API_STATEMENT_TIMEOUT_MS", default_value_t = 5_000)]
    pub statement_timeout_ms: u64,
    /// Origins allowed by CORS, comma-separated; `*` allows any.
    #[arg(long, env = "BEATSTREAM_API_CORS_ORIGINS", default_value = "*", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Postgres connections of the API.
    #[arg(
        long = "api-db-connections",
        env = "BEATSTREAM_API_DB_CONNECTIONS",
        default_value_t = 16
    )]
    pub db_connections: u32,
}

/// Default listen address of the API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

impl Options {
    /// The defaults of `beatstream api`, for the deployment file at `deployment`.
    pub fn new(deployment: PathBuf) -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid default"),
            chain_id: None,
            deployment,
            max_depth: 10,
            max_complexity: 20_000,
            max_body_bytes: 32 * 1024,
            statement_timeout_ms: 5_000,
            cors_origins: vec!["*".into()],
            db_connections: 16,
        }
    }

    /// Checks values that parse but make no sense, saying what to change.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: &str| Err(Error::Config(m.to_owned()));
        if self.max_depth < 3 || self.max_complexity < 10 {
            return fail("--max-depth must be at least 3 and --max-complexity at least 10");
        }
        if self.max_body_bytes < 1024 {
            return fail("--max-body-bytes must be at least 1024");
        }
        if self.statement_timeout_ms == 0 || self.db_connections == 0 {
            return fail("--statement-timeout-ms and --api-db-connections must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn new_matches_the_clap_defaults() {
        Cli::command().debug_assert();
        let matches =
            Cli::command().try_get_matches_from(["api", "--database-url", "postgres://x"]).unwrap();
        let parsed = Cli::from_arg_matches(&matches).unwrap().config.options;
        let built = Options::new("deployments/31337.json".into());
        assert_eq!(format!("{parsed:?}"), format!("{built:?}"));
        built.validate().unwrap();
    }
}
