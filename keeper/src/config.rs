//! Command-line and environment settings: each default is a `DEFAULT_*` constant, used by clap and by `Default`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use alloy::primitives::Address;
use beatstream_signer::Flag;

use crate::{Error, FailPoint, Result};

/// Default of `--deployment`: the dev chain's deployment file.
pub const DEFAULT_DEPLOYMENT: &str = "deployments/31337.json";
/// Default of `--keeper-payee-threshold`: 5 USDC.
pub const DEFAULT_PAYEE_THRESHOLD: u128 = 5_000_000;
/// Default of `--keeper-book-threshold`: 20 USDC.
pub const DEFAULT_BOOK_THRESHOLD: u128 = 20_000_000;
/// Default of `--keeper-max-interval-secs`: ten minutes.
pub const DEFAULT_MAX_INTERVAL_SECS: u64 = 600;
/// Default of `--keeper-urgent-window-secs`: six hours.
pub const DEFAULT_URGENT_WINDOW_SECS: u64 = 6 * 3600;
/// Default of `--keeper-min-item-value`: 0.001 USDC.
pub const DEFAULT_MIN_ITEM_VALUE: u128 = 1_000;
/// Default of `--keeper-gas-token-price`: off.
pub const DEFAULT_GAS_TOKEN_PRICE: u128 = 0;
/// Default of `--keeper-gas-budget`.
pub const DEFAULT_GAS_BUDGET: u64 = 6_000_000;
/// Default of `--keeper-max-items`.
pub const DEFAULT_MAX_ITEMS: usize = 200;
/// Default of `--keeper-max-pending`.
pub const DEFAULT_MAX_PENDING: usize = 4;
/// Default of `--keeper-confirmations`.
pub const DEFAULT_CONFIRMATIONS: u64 = 2;
/// Default of `--keeper-bump-after-secs`.
pub const DEFAULT_BUMP_AFTER_SECS: u64 = 60;
/// Default of `--keeper-bump-percent`: the most any node requires of a replacement.
pub const DEFAULT_BUMP_PERCENT: f64 = 12.5;
/// Default of `--keeper-max-attempts`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
/// Default of `--keeper-max-fee-gwei`.
pub const DEFAULT_MAX_FEE_GWEI: u64 = 500;
/// Default of `--keeper-poll-ms`.
pub const DEFAULT_POLL_MS: u64 = 1_000;
/// Default of `--keeper-lease-secs`.
pub const DEFAULT_LEASE_SECS: u64 = 15;
/// Default of `--keeper-stall-secs`: fifteen minutes.
pub const DEFAULT_STALL_SECS: u64 = 900;

/// Settings of the keeper; every flag can also come from its `BEATSTREAM_*` variable.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Postgres: URL, TLS, pooler, migrations; the leader lock on `--session-database-url`.
    #[command(flatten)]
    pub database: beatstream_primitives::db::DatabaseArgs,
    /// Ethereum JSON-RPC endpoints, retries and TLS.
    #[command(flatten)]
    pub rpc: beatstream_primitives::rpc::RpcArgs,
    /// The deployment file written by `script/Deploy.s.sol` (vault address, settlement window).
    #[arg(long, env = "BEATSTREAM_DEPLOYMENT", default_value = DEFAULT_DEPLOYMENT)]
    pub deployment: PathBuf,
    /// The keeper's own settings, the same flags in `beatstream node`.
    #[command(flatten)]
    pub options: Options,
}

/// Where the keeper's signing key comes from.
#[derive(Clone, Default, PartialEq, Eq, clap::Args)]
pub struct SignerArgs {
    /// Hex private key of the keeper account. Prefer the environment variable or a keystore: flags show in `ps`.
    #[arg(
        long = "keeper-private-key",
        id = "keeper_private_key",
        env = "BEATSTREAM_KEEPER_PRIVATE_KEY",
        hide_env_values = true
    )]
    pub private_key: Option<String>,
    /// Encrypted JSON keystore (as written by `cast wallet new` or geth) holding the keeper key.
    #[arg(long = "keeper-keystore", id = "keeper_keystore", env = "BEATSTREAM_KEEPER_KEYSTORE")]
    pub keystore: Option<PathBuf>,
    /// File holding the keystore's password (its first line).
    #[arg(
        long = "keeper-keystore-password-file",
        id = "keeper_keystore_password_file",
        env = "BEATSTREAM_KEEPER_KEYSTORE_PASSWORD_FILE"
    )]
    pub keystore_password_file: Option<PathBuf>,
    /// AWS KMS key (id, ARN or `alias/...`) of the keeper account: an `ECC_SECG_P256K1` signing key, used with
    /// kms:GetPublicKey and kms:Sign. Region, endpoint and credentials come from the standard AWS environment.
    #[arg(
        long = "keeper-aws-kms-key-id",
        id = "keeper_aws_kms_key_id",
        env = "BEATSTREAM_KEEPER_AWS_KMS_KEY_ID"
    )]
    pub aws_kms_key_id: Option<String>,
    /// AWS settings replacing the standard AWS environment for the KMS key (tests, embedding programs).
    #[arg(skip)]
    pub aws: Option<beatstream_signer::AwsSettings>,
}

impl SignerArgs {
    /// The keeper's flags, as the signer's errors name them.
    pub const ROLE: beatstream_signer::Role = beatstream_signer::Role {
        name: "keeper",
        private_key: Flag { long: "keeper-private-key", env: "BEATSTREAM_KEEPER_PRIVATE_KEY" },
        keystore: Flag { long: "keeper-keystore", env: "BEATSTREAM_KEEPER_KEYSTORE" },
        keystore_password_file: Flag {
            long: "keeper-keystore-password-file",
            env: "BEATSTREAM_KEEPER_KEYSTORE_PASSWORD_FILE",
        },
        aws_kms_key_id: Flag {
            long: "keeper-aws-kms-key-id",
            env: "BEATSTREAM_KEEPER_AWS_KMS_KEY_ID",
        },
    };

    /// What the flags hold, for [`beatstream_signer::Choice::select`].
    pub fn choice(&self) -> beatstream_signer::Choice<'_> {
        beatstream_signer::Choice {
            private_key: self.private_key.as_deref(),
            keystore: self.keystore.as_deref(),
            keystore_password_file: self.keystore_password_file.as_deref(),
            aws_kms_key_id: self.aws_kms_key_id.as_deref(),
            aws: self.aws.as_ref(),
        }
    }
}

impl std::fmt::Debug for SignerArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerArgs")
            .field("private_key", &self.private_key.as_ref().map(|_| "<redacted>"))
            .field("keystore", &self.keystore)
            .field("keystore_password_file", &self.keystore_password_file)
            .field("aws_kms_key_id", &self.aws_kms_key_id)
            .field("aws", &self.aws)
            .finish()
    }
}

/// The keeper's own settings (all but the database and RPC, which `beatstream node` shares between services).
#[derive(Clone, Debug, PartialEq, clap::Args)]
#[group(id = "keeper_options")]
pub struct Options {
    /// The keeper's key.
    #[command(flatten)]
    pub signer: SignerArgs,
    /// Name of this keeper in the lease and the journal [default: keeper-<random>].
    #[arg(long = "keeper-id", id = "keeper_id", env = "BEATSTREAM_KEEPER_ID")]
    pub keeper_id: Option<String>,
    /// Settle when one payee's unsettled value reaches this, in token base units.
    #[arg(long = "keeper-payee-threshold", id = "keeper_payee_threshold", env = "BEATSTREAM_KEEPER_PAYEE_THRESHOLD", default_value_t = DEFAULT_PAYEE_THRESHOLD)]
    pub payee_threshold: u128,
    /// Settle when the whole book's unsettled value reaches this, in token base units.
    #[arg(long = "keeper-book-threshold", id = "keeper_book_threshold", env = "BEATSTREAM_KEEPER_BOOK_THRESHOLD", default_value_t = DEFAULT_BOOK_THRESHOLD)]
    pub book_threshold: u128,
    /// Settle whatever is unsettled at least this often, in seconds.
    #[arg(long = "keeper-max-interval-secs", id = "keeper_max_interval_secs", env = "BEATSTREAM_KEEPER_MAX_INTERVAL_SECS", default_value_t = DEFAULT_MAX_INTERVAL_SECS)]
    pub max_interval_secs: u64,
    /// Settle at once a grant whose settlement window ends within this many seconds.
    #[arg(long = "keeper-urgent-window-secs", id = "keeper_urgent_window_secs", env = "BEATSTREAM_KEEPER_URGENT_WINDOW_SECS", default_value_t = DEFAULT_URGENT_WINDOW_SECS)]
    pub urgent_window_secs: u64,
    /// Vouchers paying less than this (token base units) are dust and wait, unless urgent.
    #[arg(long = "keeper-min-item-value", id = "keeper_min_item_value", env = "BEATSTREAM_KEEPER_MIN_ITEM_VALUE", default_value_t = DEFAULT_MIN_ITEM_VALUE)]
    pub min_item_value: u128,
    /// Price of the gas token in token base units (e.g. 3000000000 for 3,000 USDC per ETH); when set, a voucher
    /// whose share of the gas costs more than it pays is dust too.
    #[arg(long = "keeper-gas-token-price", id = "keeper_gas_token_price", env = "BEATSTREAM_KEEPER_GAS_TOKEN_PRICE", default_value_t = DEFAULT_GAS_TOKEN_PRICE)]
    pub gas_token_price: u128,
    /// Gas budget of one settlement transaction.
    #[arg(long = "keeper-gas-budget", id = "keeper_gas_budget", env = "BEATSTREAM_KEEPER_GAS_BUDGET", default_value_t = DEFAULT_GAS_BUDGET)]
    pub gas_budget: u64,
    /// Most vouchers in one settlement transaction.
    #[arg(long = "keeper-max-items", id = "keeper_max_items", env = "BEATSTREAM_KEEPER_MAX_ITEMS", default_value_t = DEFAULT_MAX_ITEMS)]
    pub max_items: usize,
    /// Settlement transactions in flight at once.
    #[arg(long = "keeper-max-pending", id = "keeper_max_pending", env = "BEATSTREAM_KEEPER_MAX_PENDING", default_value_t = DEFAULT_MAX_PENDING)]
    pub max_pending: usize,
    /// Blocks on top of a settlement's block before it counts as confirmed (0 on anvil).
    #[arg(long = "keeper-confirmations", id = "keeper_confirmations", env = "BEATSTREAM_KEEPER_CONFIRMATIONS", default_value_t = DEFAULT_CONFIRMATIONS)]
    pub confirmations: u64,
    /// Seconds without a receipt after which a transaction is replaced with both fees raised.
    #[arg(long = "keeper-bump-after-secs", id = "keeper_bump_after_secs", env = "BEATSTREAM_KEEPER_BUMP_AFTER_SECS", default_value_t = DEFAULT_BUMP_AFTER_SECS)]
    pub bump_after_secs: u64,
    /// Fee raise of each replacement, in percent (at least 12.5, the most nodes require is 10 to 12.5).
    #[arg(long = "keeper-bump-percent", id = "keeper_bump_percent", env = "BEATSTREAM_KEEPER_BUMP_PERCENT", default_value_t = DEFAULT_BUMP_PERCENT)]
    pub bump_percent: f64,
    /// Sends per batch (the first and its replacements); after the last, the nonce is freed with a self-transfer.
    #[arg(long = "keeper-max-attempts", id = "keeper_max_attempts", env = "BEATSTREAM_KEEPER_MAX_ATTEMPTS", default_value_t = DEFAULT_MAX_ATTEMPTS)]
    pub max_attempts: u32,
    /// Ceiling of the max fee per gas, in gwei; replacements never go above it.
    #[arg(long = "keeper-max-fee-gwei", id = "keeper_max_fee_gwei", env = "BEATSTREAM_KEEPER_MAX_FEE_GWEI", default_value_t = DEFAULT_MAX_FEE_GWEI)]
    pub max_fee_gwei: u64,
    /// How often the keeper looks at the book and its transactions, in milliseconds.
    #[arg(long = "keeper-poll-ms", id = "keeper_poll_ms", env = "BEATSTREAM_KEEPER_POLL_MS", default_value_t = DEFAULT_POLL_MS)]
    pub poll_ms: u64,
    /// Seconds a leader's lease lasts without renewal; a standby ends a leader that let it lapse.
    #[arg(long = "keeper-lease-secs", id = "keeper_lease_secs", env = "BEATSTREAM_KEEPER_LEASE_SECS", default_value_t = DEFAULT_LEASE_SECS)]
    pub lease_secs: u64,
    /// Seconds that settleable value may wait (or a transaction stay unconfirmed) before `/health` reports a stall.
    #[arg(long = "keeper-stall-secs", id = "keeper_stall_secs", env = "BEATSTREAM_KEEPER_STALL_SECS", default_value_t = DEFAULT_STALL_SECS)]
    pub stall_secs: u64,
    /// Address for `/health`, `/ready` and `/metrics`; none when unset (`--keeper-http` in `beatstream node`).
    #[arg(long = "keeper-http", id = "keeper_http", env = "BEATSTREAM_KEEPER_HTTP")]
    pub http: Option<SocketAddr>,
    /// Test hook: stop as if killed at this point of the first batch (`after-journal` or `after-broadcast`), or
    /// hang the process there (`stop-before-journal`).
    #[arg(
        long = "keeper-fail-point",
        id = "keeper_fail_point",
        env = "BEATSTREAM_KEEPER_FAIL_POINT",
        hide = true
    )]
    pub fail_point: Option<FailPoint>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            signer: SignerArgs::default(),
            keeper_id: None,
            payee_threshold: DEFAULT_PAYEE_THRESHOLD,
            book_threshold: DEFAULT_BOOK_THRESHOLD,
            max_interval_secs: DEFAULT_MAX_INTERVAL_SECS,
            urgent_window_secs: DEFAULT_URGENT_WINDOW_SECS,
            min_item_value: DEFAULT_MIN_ITEM_VALUE,
            gas_token_price: DEFAULT_GAS_TOKEN_PRICE,
            gas_budget: DEFAULT_GAS_BUDGET,
            max_items: DEFAULT_MAX_ITEMS,
            max_pending: DEFAULT_MAX_PENDING,
            confirmations: DEFAULT_CONFIRMATIONS,
            bump_after_secs: DEFAULT_BUMP_AFTER_SECS,
            bump_percent: DEFAULT_BUMP_PERCENT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            max_fee_gwei: DEFAULT_MAX_FEE_GWEI,
            poll_ms: DEFAULT_POLL_MS,
            lease_secs: DEFAULT_LEASE_SECS,
            stall_secs: DEFAULT_STALL_SECS,
            http: None,
            fail_point: None,
        }
    }
}

impl Options {
    /// Checks values that parse but make no sense, saying what to change.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: &str| Err(Error::Config(m.to_owned()));
        if !(12.5..=1000.0).contains(&self.bump_percent) {
            return fail("--keeper-bump-percent must be between 12.5 and 1000");
        }
        if self.max_items == 0 || self.max_pending == 0 || self.max_attempts == 0 {
            return fail(
                "--keeper-max-items, --keeper-max-pending and --keeper-max-attempts must be at least 1",
            );
        }
        if self.gas_budget < 100_000 {
            return fail(
                "--keeper-gas-budget must be at least 100000: one settlement takes about 50000",
            );
        }
        if self.poll_ms == 0 || self.lease_secs == 0 || self.max_fee_gwei == 0 {
            return fail(
                "--keeper-poll-ms, --keeper-lease-secs and --keeper-max-fee-gwei must be at least 1",
            );
        }
        if self.lease_secs * 1000 < 2 * self.poll_ms {
            return fail("--keeper-lease-secs must cover at least two polls (--keeper-poll-ms)");
        }
        Ok(())
    }

    pub(crate) fn poll(&self) -> Duration {
        Duration::from_millis(self.poll_ms)
    }

    pub(crate) fn max_fee_ceiling(&self) -> u128 {
        u128::from(self.max_fee_gwei) * 1_000_000_000
    }
}

/// The contracts the keeper works on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    pub(crate) chain_id: u64,
    pub(crate) vault: Address,
    pub(crate) settlement_window: u64,
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

    #[derive(clap::Parser)]
    struct OptionsCli {
        #[command(flatten)]
        options: Options,
    }

    #[test]
    fn parsing_no_flags_equals_the_default() {
        OptionsCli::command().debug_assert();
        let parsed = OptionsCli::try_parse_from(["keeper"]).unwrap().options;
        assert_eq!(parsed, Options::default());
        Options::default().validate().unwrap();
    }

    #[test]
    fn new_matches_the_clap_defaults() {
        Cli::command().debug_assert();
        let matches = Cli::command()
            .try_get_matches_from([
                "keeper",
                "--database-url",
                "postgres://x",
                "--rpc-url",
                "http://x",
            ])
            .unwrap();
        let parsed = Cli::from_arg_matches(&matches).unwrap().config;
        assert_eq!(parsed.deployment, PathBuf::from(DEFAULT_DEPLOYMENT));
        let (parsed, built) = (parsed.options, Options::default());
        assert_eq!(format!("{parsed:?}"), format!("{built:?}"));
        assert_eq!(parsed, built);
        built.validate().unwrap();
    }

    #[test]
    fn the_private_key_never_prints() {
        let mut options = Options::default();
        options.signer.private_key = Some("0xdeadbeef".into());
        options.signer.aws = Some(beatstream_signer::AwsSettings {
            credentials: Some(("AKIDEXAMPLE".into(), "cafebabe".into())),
            ..Default::default()
        });
        let shown = format!("{options:?}");
        assert!(!shown.contains("deadbeef") && shown.contains("redacted"), "{shown}");
        assert!(!shown.contains("cafebabe"), "{shown}");
    }

    #[test]
    fn the_signer_role_names_the_real_flags() {
        let cmd = OptionsCli::command();
        let role = SignerArgs::ROLE;
        for flag in
            [role.private_key, role.keystore, role.keystore_password_file, role.aws_kms_key_id]
        {
            let arg = cmd.get_arguments().find(|a| a.get_long() == Some(flag.long));
            let env = arg.and_then(|a| a.get_env()).map(|e| e.to_string_lossy().into_owned());
            assert_eq!(env.as_deref(), Some(flag.env), "--{}", flag.long);
        }
    }

    #[test]
    fn rejects_a_bump_below_twelve_and_a_half_percent() {
        let options = Options { bump_percent: 10.0, ..Default::default() };
        assert!(options.validate().unwrap_err().to_string().contains("--keeper-bump-percent"));
    }
}
