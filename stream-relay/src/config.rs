//! Command-line and environment settings.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use alloy::primitives::Address;
use url::Url;

use crate::{Error, Result};

/// Settings of the stream relay; every flag can also come from its `BEATSTREAM_*` variable.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Postgres connection URL.
    #[arg(long, env = "BEATSTREAM_DATABASE_URL")]
    pub database_url: String,
    /// Ethereum JSON-RPC endpoint (http:// or ws://), asked for the chain id and ERC-1271 grant signatures.
    #[arg(long, env = "BEATSTREAM_RPC_URL")]
    pub rpc_url: Url,
    /// Address to serve `/ws/stream`, `/health` and `/metrics` on.
    #[arg(long = "relay-listen", env = "BEATSTREAM_RELAY_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Chain id of the vault's chain [default: asked from the RPC endpoint].
    #[arg(long, env = "BEATSTREAM_CHAIN_ID")]
    pub chain_id: Option<u64>,
    /// Vault address [default: from the deployment file].
    #[arg(long, env = "BEATSTREAM_VAULT")]
    pub vault: Option<Address>,
    /// Deployment file to read the vault address from [default: deployments/<chainId>.json].
    #[arg(long, env = "BEATSTREAM_DEPLOYMENT")]
    pub deployment: Option<PathBuf>,
    /// Name of this relay instance in session records [default: relay-<random>]. Given explicitly, a restarted
    /// relay closes the sessions its previous run left open.
    #[arg(long, env = "BEATSTREAM_RELAY_ID")]
    pub relay_id: Option<String>,
    /// Length of a beat, in milliseconds (one second in production; tests shorten it).
    #[arg(long, env = "BEATSTREAM_RELAY_BEAT_MS", default_value_t = 1000)]
    pub beat_ms: u64,
    /// How many beats vouchers may fall behind what is owed before the session pauses.
    #[arg(long, env = "BEATSTREAM_RELAY_GRACE_BEATS", default_value_t = 3)]
    pub grace_beats: u32,
    /// Group-commit writers, each on its own thread with its own Postgres connection; listeners are sharded across
    /// them, so one listener's vouchers stay in order.
    #[arg(long, env = "BEATSTREAM_RELAY_WRITERS", default_value_t = 2)]
    pub writers: usize,
    /// Most vouchers and session changes in one group commit.
    #[arg(long, env = "BEATSTREAM_RELAY_COMMIT_MAX", default_value_t = 4096)]
    pub commit_max: usize,
    /// Largest text frame answered with an error rather than a closed connection, in bytes.
    #[arg(long, env = "BEATSTREAM_RELAY_MAX_FRAME_BYTES", default_value_t = 16384)]
    pub max_frame_bytes: usize,
    /// Frames per second a connection may send (a burst of twice this is allowed).
    #[arg(long, env = "BEATSTREAM_RELAY_MAX_FRAMES_PER_SEC", default_value_t = 20)]
    pub max_frames_per_sec: u32,
    /// Rejected frames within ten seconds after which the connection is closed.
    #[arg(long, env = "BEATSTREAM_RELAY_MAX_ERRORS", default_value_t = 10)]
    pub max_errors: u32,
    /// Seconds without any frame from the client after which the connection is closed.
    #[arg(long, env = "BEATSTREAM_RELAY_IDLE_TIMEOUT_SECS", default_value_t = 30)]
    pub idle_timeout_secs: u64,
    /// Sessions one connection may hold at once.
    #[arg(long, env = "BEATSTREAM_RELAY_MAX_SESSIONS", default_value_t = 4)]
    pub max_sessions: usize,
    /// Connections this relay accepts at once; more are refused with HTTP 503.
    #[arg(long, env = "BEATSTREAM_RELAY_MAX_CONNECTIONS", default_value_t = 50_000)]
    pub max_connections: usize,
    /// Seconds a graceful shutdown waits for sessions to close and vouchers to be stored.
    #[arg(long, env = "BEATSTREAM_RELAY_SHUTDOWN_SECS", default_value_t = 10)]
    pub shutdown_secs: u64,
    /// Postgres connections for reads (`hello`, `play`, health); each writer has one of its own besides.
    #[arg(long, env = "BEATSTREAM_RELAY_DB_CONNECTIONS", default_value_t = 8)]
    pub db_connections: u32,
    /// Yellow Network transport (off unless `--yellow-url` is given).
    #[command(flatten)]
    pub yellow: YellowConfig,
}

/// Settings of the Yellow Network (Nitrolite v1) transport: listeners who pay through nitronode app sessions.
#[derive(Clone, Debug, clap::Args)]
pub struct YellowConfig {
    /// Nitronode RPC endpoint, e.g. `wss://nitronode-sandbox.yellow.org/v1/ws`. Unset: the transport is off and
    /// `yellowOpen` frames get `yellow_disabled`.
    #[arg(long, env = "BEATSTREAM_YELLOW_URL")]
    pub yellow_url: Option<Url>,
    /// Private key (hex) of the relay operator's wallet: a weight-1 participant of every app session, whose
    /// co-signature is needed for any update (so the listener cannot move an artist's earnings back).
    #[arg(long, env = "BEATSTREAM_YELLOW_OPERATOR_KEY", hide_env_values = true)]
    pub yellow_operator_key: Option<String>,
    /// Application id app sessions must carry (registered on the node when its app registry is on).
    #[arg(long, env = "BEATSTREAM_YELLOW_APP_ID", default_value = "beatstream")]
    pub yellow_app_id: String,
    /// Asset symbol payments use, as the node lists it (lower-case).
    #[arg(long, env = "BEATSTREAM_YELLOW_ASSET", default_value = "usdc")]
    pub yellow_asset: String,
    /// Decimals of the asset's base unit; track rates are read in these base units.
    #[arg(long, env = "BEATSTREAM_YELLOW_ASSET_DECIMALS", default_value_t = 6)]
    pub yellow_asset_decimals: u8,
    /// Seconds an acked update may wait for the node before its session pauses (`node_unreachable`).
    #[arg(long, env = "BEATSTREAM_YELLOW_SUBMIT_GRACE_SECS", default_value_t = 10)]
    pub yellow_submit_grace_secs: u64,
    /// Seconds a request to the node may take.
    #[arg(long, env = "BEATSTREAM_YELLOW_REQUEST_SECS", default_value_t = 10)]
    pub yellow_request_secs: u64,
}

impl Default for YellowConfig {
    fn default() -> Self {
        Self {
            yellow_url: None,
            yellow_operator_key: None,
            yellow_app_id: "beatstream".into(),
            yellow_asset: "usdc".into(),
            yellow_asset_decimals: 6,
            yellow_submit_grace_secs: 10,
            yellow_request_secs: 10,
        }
    }
}

/// Default listen address of the relay.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";

impl Config {
    /// Defaults for everything but the database and the chain (what `beatstream node` passes).
    pub fn new(database_url: String, rpc_url: Url) -> Self {
        Self {
            database_url,
            rpc_url,
            listen: DEFAULT_LISTEN.parse().expect("valid default"),
            chain_id: None,
            vault: None,
            deployment: None,
            relay_id: None,
            beat_ms: 1000,
            grace_beats: 3,
            writers: 2,
            commit_max: 4096,
            max_frame_bytes: 16384,
            max_frames_per_sec: 20,
            max_errors: 10,
            idle_timeout_secs: 30,
            max_sessions: 4,
            max_connections: 50_000,
            shutdown_secs: 10,
            db_connections: 8,
            yellow: YellowConfig::default(),
        }
    }

    /// Checks values that parse but make no sense, saying what to change.
    pub fn validate(&self) -> Result<()> {
        let fail = |msg: &str| Err(Error::Config(msg.into()));
        if self.beat_ms == 0 {
            return fail("--beat-ms (BEATSTREAM_RELAY_BEAT_MS) must be at least 1");
        }
        if self.writers == 0 || self.commit_max == 0 {
            return fail("--writers and --commit-max must be at least 1");
        }
        if self.max_frame_bytes < 512 {
            return fail("--max-frame-bytes must be at least 512: a hello is about 400 bytes");
        }
        if self.max_frames_per_sec == 0 || self.max_sessions == 0 || self.max_connections == 0 {
            return fail("--max-frames-per-sec, --max-sessions and --max-connections must be >= 1");
        }
        if self.db_connections == 0 {
            return fail("--db-connections must be at least 1");
        }
        let y = &self.yellow;
        if y.yellow_url.is_some() && y.yellow_operator_key.is_none() {
            return fail(
                "--yellow-url needs --yellow-operator-key (BEATSTREAM_YELLOW_OPERATOR_KEY): the relay co-signs every update",
            );
        }
        if y.yellow_url.is_some()
            && (y.yellow_app_id.is_empty()
                || y.yellow_app_id.len() > 66
                || !y.yellow_app_id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                }))
        {
            return fail("--yellow-app-id must match ^[a-z0-9_-]{1,66}$ as the node requires");
        }
        if y.yellow_asset_decimals > 36
            || y.yellow_submit_grace_secs == 0
            || y.yellow_request_secs == 0
        {
            return fail(
                "--yellow-asset-decimals must be at most 36; --yellow-submit-grace-secs and --yellow-request-secs at least 1",
            );
        }
        Ok(())
    }

    /// One beat.
    pub fn beat(&self) -> Duration {
        Duration::from_millis(self.beat_ms)
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
                "relay",
                "--database-url",
                "postgres://x",
                "--rpc-url",
                "http://x",
            ])
            .unwrap();
        let parsed = Cli::from_arg_matches(&matches).unwrap().config;
        let built = Config::new("postgres://x".into(), "http://x".parse().unwrap());
        assert_eq!(format!("{parsed:?}"), format!("{built:?}"));
        built.validate().unwrap();
    }
}
