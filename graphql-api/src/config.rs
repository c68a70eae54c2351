//! Command-line and environment settings.

use std::{net::SocketAddr, path::PathBuf};

use crate::{Error, Result};

/// Settings of the GraphQL API; every flag can also come from its `BEATSTREAM_*` variable.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Postgres: URL (a read replica is fine: the API only reads, and does not migrate a read-only database), TLS,
    /// pooler; `LISTEN` for subscriptions on `--session-database-url` (on a replica: the primary).
    #[command(flatten)]
    pub database: beatstream_primitives::db::DatabaseArgs,
    /// Ethereum JSON-RPC endpoints; not used by the API itself (it reads the indexer's mirror), accepted so
    /// `beatstream node` can pass one configuration to every service.
    #[command(flatten)]
    pub rpc: beatstream_primitives::rpc::RpcArgs,
    /// Deployment file to read the chain id from (`beatstream node` shares its own).
    #[arg(long, env = "BEATSTREAM_DEPLOYMENT", default_value = DEFAULT_DEPLOYMENT)]
    pub deployment: PathBuf,
    /// Chain whose mirror to serve [default: from the deployment file].
    #[arg(long = "api-chain-id", id = "api_chain_id", env = "BEATSTREAM_API_CHAIN_ID")]
    pub chain_id: Option<u64>,
    /// The API's own settings, the same flags in `beatstream node`.
    #[command(flatten)]
    pub options: Options,
}

/// Default `--api-listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default `--deployment`.
pub const DEFAULT_DEPLOYMENT: &str = "deployments/31337.json";
/// Default `--api-max-depth`.
pub const DEFAULT_MAX_DEPTH: usize = 10;
/// Default `--api-max-complexity`.
pub const DEFAULT_MAX_COMPLEXITY: usize = 20_000;
/// Default `--api-max-body-bytes`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024;
/// Default `--api-statement-timeout-ms`.
pub const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 5_000;
/// Default `--api-cors-origins` (comma-separated).
pub const DEFAULT_CORS_ORIGINS: &str = "*";
/// Default `--api-db-connections`.
pub const DEFAULT_DB_CONNECTIONS: u32 = 16;

/// The API's own settings.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
#[group(id = "api_options")]
pub struct Options {
    /// Address to serve `/graphql` (POST queries, GET GraphiQL), `/graphql/ws` (subscriptions) and `/health` on.
    #[arg(long = "api-listen", id = "api_listen", env = "BEATSTREAM_API_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Deepest selection nesting a query may have.
    #[arg(long = "api-max-depth", id = "api_max_depth", env = "BEATSTREAM_API_MAX_DEPTH", default_value_t = DEFAULT_MAX_DEPTH)]
    pub max_depth: usize,
    /// Highest complexity a query may have (each field counts 1, a list field its page size times its children).
    #[arg(long = "api-max-complexity", id = "api_max_complexity", env = "BEATSTREAM_API_MAX_COMPLEXITY", default_value_t = DEFAULT_MAX_COMPLEXITY)]
    pub max_complexity: usize,
    /// Largest request body, in bytes.
    #[arg(long = "api-max-body-bytes", id = "api_max_body_bytes", env = "BEATSTREAM_API_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Postgres `statement_timeout` of every API query, in milliseconds.
    #[arg(
        long = "api-statement-timeout-ms",
        id = "api_statement_timeout_ms",
        env = "BEATSTREAM_API_STATEMENT_TIMEOUT_MS",
        default_value_t = DEFAULT_STATEMENT_TIMEOUT_MS
    )]
    pub statement_timeout_ms: u64,
    /// Origins allowed by CORS, comma-separated; `*` allows any.
    #[arg(
        long = "api-cors-origins",
        id = "api_cors_origins",
        env = "BEATSTREAM_API_CORS_ORIGINS",
        default_value = DEFAULT_CORS_ORIGINS,
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Postgres connections of the API.
    #[arg(
        long = "api-db-connections",
        id = "api_db_connections",
        env = "BEATSTREAM_API_DB_CONNECTIONS",
        default_value_t = DEFAULT_DB_CONNECTIONS
    )]
    pub db_connections: u32,
    /// The relay's WebSocket URL as browsers reach it (`wss://relay.example/ws/stream`); with `--api-app-rpc-url`,
    /// the API serves the app's settings at `/app/config.json` and the app at `/` can play.
    #[arg(
        long = "api-app-relay-url",
        id = "api_app_relay_url",
        env = "BEATSTREAM_API_APP_RELAY_URL",
        requires = "api_app_rpc_url"
    )]
    pub app_relay_url: Option<url::Url>,
    /// An Ethereum JSON-RPC URL browsers may use for reads and to send the app's transactions (public: it is served
    /// to every visitor, so never one with a secret key in it).
    #[arg(
        long = "api-app-rpc-url",
        id = "api_app_rpc_url",
        env = "BEATSTREAM_API_APP_RPC_URL",
        requires = "api_app_relay_url"
    )]
    pub app_rpc_url: Option<url::Url>,
}

impl Default for Options {
    /// What `beatstream api` runs with when given no flags.
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("a valid address"),
            max_depth: DEFAULT_MAX_DEPTH,
            max_complexity: DEFAULT_MAX_COMPLEXITY,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            statement_timeout_ms: DEFAULT_STATEMENT_TIMEOUT_MS,
            cors_origins: DEFAULT_CORS_ORIGINS.split(',').map(str::to_owned).collect(),
            db_connections: DEFAULT_DB_CONNECTIONS,
            app_relay_url: None,
            app_rpc_url: None,
        }
    }
}

impl Options {
    /// Checks values that parse but make no sense, saying what to change.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: &str| Err(Error::Config(m.to_owned()));
        if self.max_depth < 3 || self.max_complexity < 10 {
            return fail("--api-max-depth must be at least 3 and --api-max-complexity at least 10");
        }
        if self.max_body_bytes < 1024 {
            return fail("--api-max-body-bytes must be at least 1024");
        }
        if self.statement_timeout_ms == 0 || self.db_connections == 0 {
            return fail("--api-statement-timeout-ms and --api-db-connections must be at least 1");
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

    /// The app's two URLs come together or not at all.
    #[test]
    fn app_urls_come_in_pairs() {
        let parse = |args: &[&str]| {
            let mut all = vec!["api", "--database-url", "postgres://x"];
            all.extend_from_slice(args);
            Cli::command().try_get_matches_from(all)
        };
        assert!(parse(&["--api-app-relay-url", "wss://relay.example/ws/stream"]).is_err());
        assert!(parse(&["--api-app-rpc-url", "https://rpc.example"]).is_err());
        let both = parse(&[
            "--api-app-relay-url",
            "wss://relay.example/ws/stream",
            "--api-app-rpc-url",
            "https://rpc.example",
        ])
        .unwrap();
        let options = Cli::from_arg_matches(&both).unwrap().config.options;
        assert_eq!(options.app_rpc_url.unwrap().as_str(), "https://rpc.example/");
    }

    /// Parsing no flags (the database URL aside, which has no default) gives [`Options::default`].
    #[test]
    fn no_flags_parse_to_the_defaults() {
        Cli::command().debug_assert();
        let matches =
            Cli::command().try_get_matches_from(["api", "--database-url", "postgres://x"]).unwrap();
        let parsed = Cli::from_arg_matches(&matches).unwrap().config.options;
        assert_eq!(parsed, Options::default());
        parsed.validate().unwrap();
    }
}
