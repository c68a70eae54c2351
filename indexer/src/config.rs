//! Command-line and environment settings.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// Settings of the indexer; every flag can also come from its `BEATSTREAM_*` variable.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Postgres: URL, TLS, pooler, migrations.
    #[command(flatten)]
    pub database: beatstream_primitives::db::DatabaseArgs,
    /// Ethereum JSON-RPC endpoints, retries and TLS.
    #[command(flatten)]
    pub rpc: beatstream_primitives::rpc::RpcArgs,
    /// Everything else, shared with `beatstream node`.
    #[command(flatten)]
    pub options: Options,
}

/// Default `--deployment`.
pub const DEFAULT_DEPLOYMENT: &str = "deployments/31337.json";
/// Default `--ens-root`.
pub const DEFAULT_ENS_ROOT: &str = "beatstream.eth";
/// Default `--confirmations`.
pub const DEFAULT_CONFIRMATIONS: u64 = 0;
/// Default `--reorg-window`.
pub const DEFAULT_REORG_WINDOW: u64 = 128;
/// Default `--range-initial`.
pub const DEFAULT_RANGE_INITIAL: u64 = 10;
/// Default `--range-min`.
pub const DEFAULT_RANGE_MIN: u64 = 1;
/// Default `--range-max`.
pub const DEFAULT_RANGE_MAX: u64 = 50_000;
/// Default `--batch-events`.
pub const DEFAULT_BATCH_EVENTS: usize = 100_000;
/// Default `--rpc-concurrency`.
pub const DEFAULT_RPC_CONCURRENCY: usize = 2;
/// Default `--poll-interval-ms`.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 1_000;
/// Default `--indexer-ready-max-lag`.
pub const DEFAULT_READY_MAX_LAG: u64 = 20;

/// The indexer's own settings (all but the database and RPC, which `beatstream node` shares between services).
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
#[group(id = "indexer_options")]
pub struct Options {
    /// The deployment file written by `script/Deploy.s.sol`.
    #[arg(long, env = "BEATSTREAM_DEPLOYMENT", default_value = DEFAULT_DEPLOYMENT)]
    pub deployment: PathBuf,
    /// The ENS name artists are registered under; must match the deployment's root node.
    #[arg(long, env = "BEATSTREAM_ENS_ROOT", default_value = DEFAULT_ENS_ROOT)]
    pub ens_root: String,
    /// Blocks behind the head to stay (0 follows the head itself, fine on anvil).
    #[arg(long, env = "BEATSTREAM_CONFIRMATIONS", default_value_t = DEFAULT_CONFIRMATIONS)]
    pub confirmations: u64,
    /// Blocks below the head that may still reorganise: kept with their hashes and undo entries.
    #[arg(long, env = "BEATSTREAM_REORG_WINDOW", default_value_t = DEFAULT_REORG_WINDOW)]
    pub reorg_window: u64,
    /// First `eth_getLogs` range, in blocks; it adapts between the min and max below (doubling per response on a
    /// sparse chain, so a small start costs a few round trips; on a dense one the first answer comes quickly).
    #[arg(long, env = "BEATSTREAM_RANGE_INITIAL", default_value_t = DEFAULT_RANGE_INITIAL)]
    pub range_initial: u64,
    /// Smallest `eth_getLogs` range.
    #[arg(long, env = "BEATSTREAM_RANGE_MIN", default_value_t = DEFAULT_RANGE_MIN)]
    pub range_min: u64,
    /// Largest `eth_getLogs` range.
    #[arg(long, env = "BEATSTREAM_RANGE_MAX", default_value_t = DEFAULT_RANGE_MAX)]
    pub range_max: u64,
    /// Events per transaction during a backfill: several getLogs ranges are merged up to this. Larger batches write
    /// each derived row fewer times; each batch in flight holds its decoded events in memory (about 0.2 KiB each).
    #[arg(long, env = "BEATSTREAM_BATCH_EVENTS", default_value_t = DEFAULT_BATCH_EVENTS)]
    pub batch_events: usize,
    /// `eth_getLogs` requests in flight during backfill (results are still committed in block order).
    #[arg(long, env = "BEATSTREAM_RPC_CONCURRENCY", default_value_t = DEFAULT_RPC_CONCURRENCY)]
    pub rpc_concurrency: usize,
    /// How often to poll for a new head once caught up, in milliseconds.
    #[arg(long, env = "BEATSTREAM_POLL_INTERVAL_MS", default_value_t = DEFAULT_POLL_INTERVAL_MS)]
    pub poll_interval_ms: u64,
    /// Address for `/health`, `/ready` and `/metrics`; none when unset.
    #[arg(long = "indexer-http", id = "indexer_http", env = "BEATSTREAM_INDEXER_HTTP")]
    pub http: Option<SocketAddr>,
    /// Blocks the indexer may trail its target (the head minus `--confirmations`) while `/ready` still answers 200.
    #[arg(long = "indexer-ready-max-lag", id = "indexer_ready_max_lag", env = "BEATSTREAM_INDEXER_READY_MAX_LAG", default_value_t = DEFAULT_READY_MAX_LAG)]
    pub ready_max_lag: u64,
}

impl Default for Options {
    /// What `beatstream indexer` runs with when given no flags.
    fn default() -> Self {
        Self {
            deployment: DEFAULT_DEPLOYMENT.into(),
            ens_root: DEFAULT_ENS_ROOT.into(),
            confirmations: DEFAULT_CONFIRMATIONS,
            reorg_window: DEFAULT_REORG_WINDOW,
            range_initial: DEFAULT_RANGE_INITIAL,
            range_min: DEFAULT_RANGE_MIN,
            range_max: DEFAULT_RANGE_MAX,
            batch_events: DEFAULT_BATCH_EVENTS,
            rpc_concurrency: DEFAULT_RPC_CONCURRENCY,
            poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
            http: None,
            ready_max_lag: DEFAULT_READY_MAX_LAG,
        }
    }
}

impl Options {
    /// The defaults `beatstream indexer` has, for the deployment file at `deployment`.
    pub fn new(deployment: PathBuf) -> Self {
        Self { deployment, ..Self::default() }
    }

    /// Checks the settings once at start-up, saying what to change.
    pub fn validate(&self) -> crate::Result<()> {
        let fail = |m: &str| Err(crate::Error::Config(m.to_owned()));
        if self.range_min == 0 || self.range_min > self.range_max {
            return fail("--range-min must be at least 1 and at most --range-max");
        }
        if self.batch_events == 0 {
            return fail("--batch-events must be at least 1");
        }
        if self.rpc_concurrency == 0 {
            return fail("--rpc-concurrency must be at least 1");
        }
        if self.reorg_window < self.confirmations {
            return fail("--reorg-window must be at least --confirmations");
        }
        Ok(())
    }

    pub(crate) fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
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

    /// Parsing no flags (the database and RPC URLs aside, which have no default) gives [`Options::default`].
    #[test]
    fn no_flags_parse_to_the_defaults() {
        Cli::command().debug_assert();
        let matches = Cli::command()
            .try_get_matches_from([
                "indexer",
                "--database-url",
                "postgres://x",
                "--rpc-url",
                "http://x",
            ])
            .unwrap();
        let parsed = Cli::from_arg_matches(&matches).unwrap().config.options;
        assert_eq!(parsed, Options::default());
        assert_eq!(Options::new(DEFAULT_DEPLOYMENT.into()), Options::default());
        parsed.validate().unwrap();
    }
}
