//! Command-line and environment settings; each default is declared once, as a `DEFAULT_*` constant that both clap
//! and [`Config::new`] / [`YellowConfig::default`] use.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use alloy::primitives::Address;
use beatstream_primitives::{db::DatabaseArgs, rpc::RpcArgs};
use beatstream_signer::Flag;
use url::Url;

use crate::{Error, Result};

/// Default listen address of the relay.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";
/// Default `--relay-beat-ms`: one second.
pub const DEFAULT_BEAT_MS: u64 = 1000;
/// Default `--relay-grace-beats`.
pub const DEFAULT_GRACE_BEATS: u32 = 3;
/// Default `--relay-writers`.
pub const DEFAULT_WRITERS: usize = 2;
/// Default `--relay-commit-interval-us`.
pub const DEFAULT_COMMIT_INTERVAL_US: u64 = 5_000;
/// Default `--relay-commit-max`.
pub const DEFAULT_COMMIT_MAX: usize = 4096;
/// Default `--relay-max-frame-bytes`.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16384;
/// Default `--relay-max-frames-per-sec`.
pub const DEFAULT_MAX_FRAMES_PER_SEC: u32 = 20;
/// Default `--relay-max-errors`.
pub const DEFAULT_MAX_ERRORS: u32 = 10;
/// Default `--relay-idle-timeout-secs`.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 30;
/// Default `--relay-max-sessions`.
pub const DEFAULT_MAX_SESSIONS: usize = 4;
/// Default `--relay-max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 50_000;
/// Default `--relay-shutdown-secs`.
pub const DEFAULT_SHUTDOWN_SECS: u64 = 10;
/// Default `--relay-db-connections`.
pub const DEFAULT_DB_CONNECTIONS: u32 = 8;
/// Default `--yellow-app-id`.
pub const DEFAULT_YELLOW_APP_ID: &str = "beatstream";
/// Default `--yellow-asset`.
pub const DEFAULT_YELLOW_ASSET: &str = "usdc";
/// Default `--yellow-asset-decimals` (USDC).
pub const DEFAULT_YELLOW_ASSET_DECIMALS: u8 = 6;
/// Default `--yellow-submit-grace-secs`.
pub const DEFAULT_YELLOW_SUBMIT_GRACE_SECS: u64 = 10;
/// Default `--yellow-request-secs`.
pub const DEFAULT_YELLOW_REQUEST_SECS: u64 = 10;

/// Settings of the stream relay; every flag can also come from its `BEATSTREAM_*` variable.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Postgres: URL, TLS, pooler, migrations.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Ethereum JSON-RPC endpoints, asked for the chain id and ERC-1271 grant signatures; retries and TLS.
    #[command(flatten)]
    pub rpc: RpcArgs,
    /// Chain id of the vault's chain [default: asked from the RPC endpoint].
    #[arg(long, env = "BEATSTREAM_CHAIN_ID")]
    pub chain_id: Option<u64>,
    /// Vault address [default: from the deployment file].
    #[arg(long, env = "BEATSTREAM_VAULT")]
    pub vault: Option<Address>,
    /// Deployment file to read the vault address from [default: deployments/<chainId>.json].
    #[arg(long, env = "BEATSTREAM_DEPLOYMENT")]
    pub deployment: Option<PathBuf>,
    /// The node's audio key, shared with the studio: it opens each track's secret to release chunk keys.
    #[command(flatten)]
    pub audio_key: beatstream_primitives::audio_key::AudioKeyArgs,
    /// The relay's own settings, the same flags in `beatstream node`.
    #[command(flatten)]
    pub options: Options,
}

/// The relay's own settings (all but the database, the RPC endpoints and the chain, which `beatstream node` shares
/// between services).
#[derive(Clone, Debug, clap::Args)]
#[group(id = "relay_options")]
pub struct Options {
    /// Address to serve `/ws/stream`, `/health` and `/metrics` on.
    #[arg(long = "relay-listen", id = "relay_listen", env = "BEATSTREAM_RELAY_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Name of this relay instance in session records [default: relay-<host name>-<port>, the same on every
    /// restart]. At start the relay closes the sessions (and Yellow app sessions) its previous run under this id left
    /// open. Two relays running at once must not share it.
    #[arg(long = "relay-id", id = "relay_id", env = "BEATSTREAM_RELAY_ID")]
    pub relay_id: Option<String>,
    /// Length of a beat, in milliseconds (one second in production; tests shorten it).
    #[arg(long = "relay-beat-ms", id = "relay_beat_ms", env = "BEATSTREAM_RELAY_BEAT_MS", default_value_t = DEFAULT_BEAT_MS)]
    pub beat_ms: u64,
    /// How many beats vouchers may fall behind what is owed before the session pauses.
    #[arg(long = "relay-grace-beats", id = "relay_grace_beats", env = "BEATSTREAM_RELAY_GRACE_BEATS", default_value_t = DEFAULT_GRACE_BEATS)]
    pub grace_beats: u32,
    /// Group-commit writers, each on its own thread with its own Postgres connection; listeners are sharded across
    /// them, so one listener's vouchers stay in order.
    #[arg(long = "relay-writers", id = "relay_writers", env = "BEATSTREAM_RELAY_WRITERS", default_value_t = DEFAULT_WRITERS)]
    pub writers: usize,
    /// The budget a relay leases itself for a grant when it reads the listener's funds, in multiples of the voucher
    /// that asked (about this many seconds of playing): vouchers within it are stored without reading again.
    /// Another relay counts it as spent, so a larger lease means fewer reads but more of a listener's funds held
    /// by one relay (docs/DECISIONS.md "Budgets leased to relays").
    #[arg(long = "relay-lease-beats", id = "relay_lease_beats", env = "BEATSTREAM_RELAY_LEASE_BEATS", default_value_t = crate::lease::DEFAULT_MULTIPLE)]
    pub lease_beats: u32,
    /// The least time between two group commits of one writer, in microseconds: a writer that committed less than
    /// this ago waits out the rest, gathering more, so a loaded relay commits fewer, larger batches (an ack waits at
    /// most this long more). A quiet relay commits at once. 0 commits as soon as anything is queued.
    #[arg(long = "relay-commit-interval-us", id = "relay_commit_interval_us", env = "BEATSTREAM_RELAY_COMMIT_INTERVAL_US", default_value_t = DEFAULT_COMMIT_INTERVAL_US)]
    pub commit_interval_us: u64,
    /// Most vouchers and session changes in one group commit.
    #[arg(long = "relay-commit-max", id = "relay_commit_max", env = "BEATSTREAM_RELAY_COMMIT_MAX", default_value_t = DEFAULT_COMMIT_MAX)]
    pub commit_max: usize,
    /// Largest text frame answered with an error rather than a closed connection, in bytes.
    #[arg(long = "relay-max-frame-bytes", id = "relay_max_frame_bytes", env = "BEATSTREAM_RELAY_MAX_FRAME_BYTES", default_value_t = DEFAULT_MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,
    /// Frames per second a connection may send (a burst of twice this is allowed).
    #[arg(long = "relay-max-frames-per-sec", id = "relay_max_frames_per_sec", env = "BEATSTREAM_RELAY_MAX_FRAMES_PER_SEC", default_value_t = DEFAULT_MAX_FRAMES_PER_SEC)]
    pub max_frames_per_sec: u32,
    /// Rejected frames within ten seconds after which the connection is closed.
    #[arg(long = "relay-max-errors", id = "relay_max_errors", env = "BEATSTREAM_RELAY_MAX_ERRORS", default_value_t = DEFAULT_MAX_ERRORS)]
    pub max_errors: u32,
    /// Seconds without any frame from the client after which the connection is closed.
    #[arg(long = "relay-idle-timeout-secs", id = "relay_idle_timeout_secs", env = "BEATSTREAM_RELAY_IDLE_TIMEOUT_SECS", default_value_t = DEFAULT_IDLE_TIMEOUT_SECS)]
    pub idle_timeout_secs: u64,
    /// Sessions one connection may hold at once.
    #[arg(long = "relay-max-sessions", id = "relay_max_sessions", env = "BEATSTREAM_RELAY_MAX_SESSIONS", default_value_t = DEFAULT_MAX_SESSIONS)]
    pub max_sessions: usize,
    /// Connections this relay accepts at once; more are refused with HTTP 503.
    #[arg(long = "relay-max-connections", id = "relay_max_connections", env = "BEATSTREAM_RELAY_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Seconds a graceful shutdown waits for sessions to close and vouchers to be stored.
    #[arg(long = "relay-shutdown-secs", id = "relay_shutdown_secs", env = "BEATSTREAM_RELAY_SHUTDOWN_SECS", default_value_t = DEFAULT_SHUTDOWN_SECS)]
    pub shutdown_secs: u64,
    /// Postgres connections for reads (`hello`, `play`, health); each writer has one of its own besides.
    #[arg(long = "relay-db-connections", id = "relay_db_connections", env = "BEATSTREAM_RELAY_DB_CONNECTIONS", default_value_t = DEFAULT_DB_CONNECTIONS)]
    pub db_connections: u32,
    /// Yellow Network transport (off unless `--yellow-url` is given).
    #[command(flatten)]
    pub yellow: YellowConfig,
}

/// Settings of the Yellow Network (Nitrolite v1) transport: listeners who pay through nitronode app sessions.
#[derive(Clone, clap::Args)]
pub struct YellowConfig {
    /// Nitronode RPC endpoint, e.g. `wss://nitronode-sandbox.yellow.org/v1/ws`. Unset: the transport is off and
    /// `yellowOpen` frames get `yellow_disabled`.
    #[arg(long, env = "BEATSTREAM_YELLOW_URL")]
    pub yellow_url: Option<Url>,
    /// Private key (hex) of the relay operator's wallet: a weight-1 participant of every app session, whose
    /// co-signature is needed for any update (so the listener cannot move an artist's earnings back). Prefer the
    /// environment variable, a keystore or a KMS key: flags show in `ps`.
    #[arg(long, env = "BEATSTREAM_YELLOW_OPERATOR_KEY", hide_env_values = true)]
    pub yellow_operator_key: Option<String>,
    /// Encrypted JSON keystore (as written by `cast wallet new` or geth) holding the operator's key.
    #[arg(long, env = "BEATSTREAM_YELLOW_OPERATOR_KEYSTORE")]
    pub yellow_operator_keystore: Option<PathBuf>,
    /// File holding the operator keystore's password (its first line).
    #[arg(long, env = "BEATSTREAM_YELLOW_OPERATOR_KEYSTORE_PASSWORD_FILE")]
    pub yellow_operator_keystore_password_file: Option<PathBuf>,
    /// AWS KMS key (id, ARN or `alias/...`) of the operator's wallet: an `ECC_SECG_P256K1` signing key, used with
    /// kms:GetPublicKey and kms:Sign (one Sign per co-signed state). Region, endpoint and credentials come from the
    /// standard AWS environment.
    #[arg(long, env = "BEATSTREAM_YELLOW_OPERATOR_AWS_KMS_KEY_ID")]
    pub yellow_operator_aws_kms_key_id: Option<String>,
    /// AWS settings replacing the standard AWS environment for the operator's KMS key (tests, embedding programs).
    #[arg(skip)]
    pub yellow_operator_aws: Option<beatstream_signer::AwsSettings>,
    /// Application id app sessions must carry (registered on the node when its app registry is on).
    #[arg(long, env = "BEATSTREAM_YELLOW_APP_ID", default_value = DEFAULT_YELLOW_APP_ID)]
    pub yellow_app_id: String,
    /// Asset symbol payments use, as the node lists it (lower-case).
    #[arg(long, env = "BEATSTREAM_YELLOW_ASSET", default_value = DEFAULT_YELLOW_ASSET)]
    pub yellow_asset: String,
    /// Decimals of the asset's base unit; track rates are read in these base units.
    #[arg(long, env = "BEATSTREAM_YELLOW_ASSET_DECIMALS", default_value_t = DEFAULT_YELLOW_ASSET_DECIMALS)]
    pub yellow_asset_decimals: u8,
    /// Seconds an acked update may wait for the node before its session pauses (`node_unreachable`).
    #[arg(long, env = "BEATSTREAM_YELLOW_SUBMIT_GRACE_SECS", default_value_t = DEFAULT_YELLOW_SUBMIT_GRACE_SECS)]
    pub yellow_submit_grace_secs: u64,
    /// Seconds a request to the node may take.
    #[arg(long, env = "BEATSTREAM_YELLOW_REQUEST_SECS", default_value_t = DEFAULT_YELLOW_REQUEST_SECS)]
    pub yellow_request_secs: u64,
}

impl YellowConfig {
    /// The operator key's flags, as the signer's errors name them.
    pub const OPERATOR: beatstream_signer::Role = beatstream_signer::Role {
        name: "Yellow operator",
        private_key: Flag { long: "yellow-operator-key", env: "BEATSTREAM_YELLOW_OPERATOR_KEY" },
        keystore: Flag {
            long: "yellow-operator-keystore",
            env: "BEATSTREAM_YELLOW_OPERATOR_KEYSTORE",
        },
        keystore_password_file: Flag {
            long: "yellow-operator-keystore-password-file",
            env: "BEATSTREAM_YELLOW_OPERATOR_KEYSTORE_PASSWORD_FILE",
        },
        aws_kms_key_id: Flag {
            long: "yellow-operator-aws-kms-key-id",
            env: "BEATSTREAM_YELLOW_OPERATOR_AWS_KMS_KEY_ID",
        },
    };

    /// What the operator key's flags hold, for [`beatstream_signer::Choice::select`].
    pub fn operator_key(&self) -> beatstream_signer::Choice<'_> {
        beatstream_signer::Choice {
            private_key: self.yellow_operator_key.as_deref(),
            keystore: self.yellow_operator_keystore.as_deref(),
            keystore_password_file: self.yellow_operator_keystore_password_file.as_deref(),
            aws_kms_key_id: self.yellow_operator_aws_kms_key_id.as_deref(),
            aws: self.yellow_operator_aws.as_ref(),
        }
    }
}

impl std::fmt::Debug for YellowConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Every field named, so a new one cannot be forgotten here; the hex key never printed.
        let Self {
            yellow_url,
            yellow_operator_key,
            yellow_operator_keystore,
            yellow_operator_keystore_password_file,
            yellow_operator_aws_kms_key_id,
            yellow_operator_aws,
            yellow_app_id,
            yellow_asset,
            yellow_asset_decimals,
            yellow_submit_grace_secs,
            yellow_request_secs,
        } = self;
        f.debug_struct("YellowConfig")
            .field("yellow_url", yellow_url)
            .field("yellow_operator_key", &yellow_operator_key.as_ref().map(|_| "<redacted>"))
            .field("yellow_operator_keystore", yellow_operator_keystore)
            .field("yellow_operator_keystore_password_file", yellow_operator_keystore_password_file)
            .field("yellow_operator_aws_kms_key_id", yellow_operator_aws_kms_key_id)
            .field("yellow_operator_aws", yellow_operator_aws)
            .field("yellow_app_id", yellow_app_id)
            .field("yellow_asset", yellow_asset)
            .field("yellow_asset_decimals", yellow_asset_decimals)
            .field("yellow_submit_grace_secs", yellow_submit_grace_secs)
            .field("yellow_request_secs", yellow_request_secs)
            .finish()
    }
}

impl Default for YellowConfig {
    fn default() -> Self {
        Self {
            yellow_url: None,
            yellow_operator_key: None,
            yellow_operator_keystore: None,
            yellow_operator_keystore_password_file: None,
            yellow_operator_aws_kms_key_id: None,
            yellow_operator_aws: None,
            yellow_app_id: DEFAULT_YELLOW_APP_ID.into(),
            yellow_asset: DEFAULT_YELLOW_ASSET.into(),
            yellow_asset_decimals: DEFAULT_YELLOW_ASSET_DECIMALS,
            yellow_submit_grace_secs: DEFAULT_YELLOW_SUBMIT_GRACE_SECS,
            yellow_request_secs: DEFAULT_YELLOW_REQUEST_SECS,
        }
    }
}

impl Config {
    /// Defaults for everything but the database and the chain (what `beatstream node` passes).
    pub fn new(database_url: String, rpc: impl Into<RpcArgs>) -> Self {
        Self {
            database: DatabaseArgs::new(database_url),
            rpc: rpc.into(),
            chain_id: None,
            vault: None,
            deployment: None,
            audio_key: Default::default(),
            options: Options::default(),
        }
    }

    /// Checks values that parse but make no sense, saying what to change.
    pub fn validate(&self) -> Result<()> {
        self.database.validate(false)?;
        self.rpc.validate().map_err(|e| Error::Config(e.to_string()))?;
        self.options.validate()
    }
}

impl Default for Options {
    /// What `beatstream relay` runs with when given no flags.
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid default"),
            relay_id: None,
            beat_ms: DEFAULT_BEAT_MS,
            grace_beats: DEFAULT_GRACE_BEATS,
            writers: DEFAULT_WRITERS,
            lease_beats: crate::lease::DEFAULT_MULTIPLE,
            commit_interval_us: DEFAULT_COMMIT_INTERVAL_US,
            commit_max: DEFAULT_COMMIT_MAX,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_frames_per_sec: DEFAULT_MAX_FRAMES_PER_SEC,
            max_errors: DEFAULT_MAX_ERRORS,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_secs: DEFAULT_SHUTDOWN_SECS,
            db_connections: DEFAULT_DB_CONNECTIONS,
            yellow: YellowConfig::default(),
        }
    }
}

impl Options {
    /// Checks values that parse but make no sense, saying what to change.
    pub fn validate(&self) -> Result<()> {
        let fail = |msg: &str| Err(Error::Config(msg.into()));
        if self.beat_ms == 0 {
            return fail("--relay-beat-ms (BEATSTREAM_RELAY_BEAT_MS) must be at least 1");
        }
        if self.writers == 0 || self.commit_max == 0 {
            return fail("--relay-writers and --relay-commit-max must be at least 1");
        }
        if self.lease_beats == 0 {
            return fail("--relay-lease-beats (BEATSTREAM_RELAY_LEASE_BEATS) must be at least 1");
        }
        if self.max_frame_bytes < 512 {
            return fail(
                "--relay-max-frame-bytes must be at least 512: a hello is about 400 bytes",
            );
        }
        if self.max_frames_per_sec == 0 || self.max_sessions == 0 || self.max_connections == 0 {
            return fail(
                "--relay-max-frames-per-sec, --relay-max-sessions and --relay-max-connections must be >= 1",
            );
        }
        if self.db_connections == 0 {
            return fail("--relay-db-connections must be at least 1");
        }
        let y = &self.yellow;
        if y.yellow_url.is_some() {
            // Exactly one operator key: the relay co-signs every update.
            y.operator_key().select(&YellowConfig::OPERATOR).map_err(|e| {
                Error::Config(format!("--yellow-url needs the operator's key: {e}"))
            })?;
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
    use clap::{CommandFactory, FromArgMatches, Parser};

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
        let built = Config::new("postgres://x".into(), "http://x".parse::<url::Url>().unwrap());
        assert_eq!(format!("{parsed:?}"), format!("{built:?}"));
        built.validate().unwrap();
    }
    #[derive(clap::Parser)]
    struct YellowCli {
        #[command(flatten)]
        yellow: YellowConfig,
    }

    #[test]
    fn parsing_no_yellow_flags_equals_the_default() {
        let parsed = YellowCli::try_parse_from(["relay"]).unwrap().yellow;
        assert_eq!(format!("{parsed:?}"), format!("{:?}", YellowConfig::default()));
    }

    #[test]
    fn the_operator_role_names_the_real_flags() {
        let cmd = YellowCli::command();
        let role = YellowConfig::OPERATOR;
        for flag in
            [role.private_key, role.keystore, role.keystore_password_file, role.aws_kms_key_id]
        {
            let arg = cmd.get_arguments().find(|a| a.get_long() == Some(flag.long));
            let env = arg.and_then(|a| a.get_env()).map(|e| e.to_string_lossy().into_owned());
            assert_eq!(env.as_deref(), Some(flag.env), "--{}", flag.long);
        }
    }

    #[test]
    fn yellow_needs_exactly_one_operator_key_and_never_prints_it() {
        let mut config = Config::new("postgres://x".into(), "http://x".parse::<Url>().unwrap());
        config.options.yellow.yellow_url = Some("ws://127.0.0.1:1/v1/ws".parse().unwrap());
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains(
                "--yellow-url needs the operator's key: no Yellow operator key: set one of \
                 --yellow-operator-key (BEATSTREAM_YELLOW_OPERATOR_KEY)"
            ),
            "{err}"
        );
        config.options.yellow.yellow_operator_key = Some("0xdeadbeef".into());
        config.validate().unwrap();
        config.options.yellow.yellow_operator_aws_kms_key_id = Some("alias/operator".into());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("several Yellow operator keys"), "{err}");
        let shown = format!("{config:?}");
        assert!(!shown.contains("deadbeef") && shown.contains("alias/operator"), "{shown}");
    }
}
