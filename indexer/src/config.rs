//! Command-line and environment settings.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// Settings of the indexer; every flag can also come from its `BEATSTREAM_*` variable.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Postgres connection URL.
    #[arg(long, env = "BEATSTREAM_DATABASE_URL")]
    pub database_url: String,
    /// Ethereum JSON-RPC endpoint (http:// or ws://).
    #[arg(long, env = "BEATSTREAM_RPC_URL")]
    pub rpc_url: url::Url,
    /// Everything else, shared with `beatstream node`.
    #[command(flatten)]
    pub options: Options,
}

/// The indexer's own settings (all but the database and RPC, which `beatstream node` shares between services).
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// The deployment file written by `script/Deploy.s.sol`.
    #[arg(long, env = "BEATSTREAM_DEPLOYMENT", default_value = "deployments/31337.json")]
    pub deployment: PathBuf,
    /// The ENS name artists are registered under; must match the deployment's root node.
    #[arg(long, env = "BEATSTREAM_ENS_ROOT", default_value = "beatstream.eth")]
    pub ens_root: String,
    /// Blocks behind the head to stay (0 follows the head itself, fine on anvil).
    #[arg(long, env = "BEATSTREAM_CONFIRMATIONS", default_value_t = 0)]
    pub confirmations: u64,
    /// Blocks below the head that may still reorganise: kept with their hashes and undo entries.
    #[arg(long, env = "BEATSTREAM_REORG_WINDOW", default_value_t = 128)]
    pub reorg_window: u64,
    /// First `eth_getLogs` range, in blocks; it adapts between the min and max below (doubling per response on a
    /// sparse chain, so a small start costs a few round trips; on a dense one the first answer comes quickly).
    #[arg(long, env = "BEATSTREAM_RANGE_INITIAL", default_value_t = 10)]
    pub range_initial: u64,
    /// Smallest `eth_getLogs` range.
    #[arg(long, env = "BEATSTREAM_RANGE_MIN", default_value_t = 1)]
    pub range_min: u64,
    /// Largest `eth_getLogs` range.
    #[arg(long, env = "BEATSTREAM_RANGE_MAX", default_value_t = 50_000)]
    pub range_max: u64,
    /// Events per transaction during a backfill: several getLogs ranges are merged up to this. Larger batches write
    /// each derived row fewer times; each batch in flight holds its decoded events in memory (about 0.2 KiB each).
    #[arg(long, env = "BEATSTREAM_BATCH_EVENTS", default_value_t = 100_000)]
    pub batch_events: usize,
    /// `eth_getLogs` requests in flight during backfill (results are still committed in block order).
    #[arg(long, env = "BEATSTREAM_RPC_CONCURRENCY", default_value_t = 2)]
    pub rpc_concurrency: usize,
    /// Timeout of one RPC request, in seconds.
    #[arg(long, env = "BEATSTREAM_RPC_TIMEOUT", default_value_t = 30)]
    pub rpc_timeout_secs: u64,
    /// How often to poll for a new head once caught up, in milliseconds.
    #[arg(long, env = "BEATSTREAM_POLL_INTERVAL_MS", default_value_t = 1_000)]
    pub poll_interval_ms: u64,
    /// Address for `/health`, `/ready` and `/metrics`; none when unset.
    #[arg(long, env = "BEATSTREAM_INDEXER_HTTP")]
    pub http: Option<SocketAddr>,
}

impl Options {
    /// The defaults `beatstream indexer` has, for the deployment file at `deployment`.
    pub fn new(deployment: PathBuf) -> Self {
        Self {
            deployment,
            ens_root: "beatstream.eth".into(),
            confirmations: 0,
            reorg_window: 128,
            range_initial: 10,
            range_min: 1,
            range_max: 50_000,
            batch_events: 100_000,
            rpc_concurrency: 2,
            rpc_timeout_secs: 30,
            poll_interval_ms: 1_000,
            http: None,
        }
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
        if self.rpc_timeout_secs == 0 {
            return fail("--rpc-timeout must be at least 1 second");
        }
        Ok(())
    }

    pub(crate) fn rpc_timeout(&self) -> Duration {
        Duration::from_secs(self.rpc_timeout_secs)
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

    #[test]
    fn new_matches_the_clap_defaults() {
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
        let built = Options::new("deployments/31337.json".into());
        assert_eq!(format!("{parsed:?}"), format!("{built:?}"));
        built.validate().unwrap();
    }
}
