//! Command-line interface. Every flag can also be set from a `BEATSTREAM_*` variable.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use url::Url;

/// Default `beatstream dev --listeners`: no simulated players.
pub(crate) const DEFAULT_DEV_LISTENERS: usize = 0;
/// Default `beatstream dev --api-listen`: the API's own default.
pub(crate) const DEFAULT_DEV_API_LISTEN: &str = beatstream_graphql_api::DEFAULT_LISTEN;
/// Default `beatstream dev --relay-listen`: the relay's own default.
pub(crate) const DEFAULT_DEV_RELAY_LISTEN: &str = beatstream_stream_relay::DEFAULT_LISTEN;

/// BeatStream node: pay artists per second of listening.
#[derive(Debug, Parser)]
#[command(name = "beatstream", version, about)]
pub(crate) struct Cli {
    /// Log format; the level comes from RUST_LOG (default `info`).
    #[arg(long, global = true, env = "BEATSTREAM_LOG_FORMAT", value_enum, default_value_t)]
    pub(crate) log_format: LogFormat,
    /// A TOML file of settings (keys are flag names; `[node]`, `[relay]`, ... tables per command), under the
    /// environment and the command line.
    #[arg(long, global = true, env = "BEATSTREAM_CONFIG")]
    pub(crate) config: Option<std::path::PathBuf>,
    /// Print the command's effective settings as TOML, each with where it came from (secrets redacted), and exit.
    #[arg(long, global = true, env = "BEATSTREAM_PRINT_CONFIG")]
    pub(crate) print_config: bool,
    /// What to run.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Subcommands.
// Parsed once per process: the size of its largest variant (every service's flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Apply pending database migrations, print them, and exit.
    Migrate(MigrateArgs),
    /// Run every service in this process.
    Node(NodeArgs),
    /// Run only the indexer.
    Indexer(beatstream_indexer::Config),
    /// Run only the stream relay.
    Relay(beatstream_stream_relay::Config),
    /// Load generator: N simulated players streaming signed vouchers to a relay.
    Simulate(beatstream_sim::SimulateConfig),
    /// Run only the keeper.
    Keeper(beatstream_keeper::Config),
    /// Run only the GraphQL API.
    Api(beatstream_graphql_api::Config),
    /// Zero-config demo: anvil, contracts, Postgres, every service and demo data.
    Dev(DevArgs),
}

/// Arguments of `beatstream migrate`.
#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// Postgres connection URL [falls back to DATABASE_URL, the sqlx convention].
    #[arg(long, env = "BEATSTREAM_DATABASE_URL")]
    pub(crate) database_url: Option<String>,
}

/// Arguments of `beatstream node`: what the services share, given once.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// Postgres, shared by every service: URL, TLS, pooler, migrations.
    #[command(flatten)]
    pub(crate) database: beatstream_primitives::db::DatabaseArgs,
    /// Ethereum JSON-RPC endpoints, retries and TLS, shared by every service.
    #[command(flatten)]
    pub(crate) rpc: beatstream_primitives::rpc::RpcArgs,
    /// The node's audio key, shared by the relay (releases chunk keys) and the studio (seals uploads).
    #[command(flatten)]
    pub(crate) audio_key: beatstream_primitives::audio_key::AudioKeyArgs,
    /// The indexer's settings (its `--deployment` is every service's).
    #[command(flatten)]
    pub(crate) indexer: beatstream_indexer::Options,
    /// The relay's settings.
    #[command(flatten)]
    pub(crate) relay: beatstream_stream_relay::Options,
    /// The keeper's settings; without a key the node runs no keeper.
    #[command(flatten)]
    pub(crate) keeper: beatstream_keeper::Options,
    /// The API's settings.
    #[command(flatten)]
    pub(crate) api: beatstream_graphql_api::Options,
    /// The studio's settings (artists sign in and upload; served on the API's address).
    #[command(flatten)]
    pub(crate) studio: beatstream_studio::Options,
    /// Do not run the indexer (another process does).
    #[arg(long, env = "BEATSTREAM_NO_INDEXER")]
    pub(crate) no_indexer: bool,
    /// Do not run the relay.
    #[arg(long, env = "BEATSTREAM_NO_RELAY")]
    pub(crate) no_relay: bool,
    /// Do not run the keeper.
    #[arg(long, env = "BEATSTREAM_NO_KEEPER")]
    pub(crate) no_keeper: bool,
    /// Do not run the GraphQL API (nor the studio, which it serves).
    #[arg(long, env = "BEATSTREAM_NO_API")]
    pub(crate) no_api: bool,
    /// Do not serve the studio (artists' sign-in and uploads) on the API's address.
    #[arg(long, env = "BEATSTREAM_NO_STUDIO")]
    pub(crate) no_studio: bool,
}

/// Arguments of `beatstream dev`.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub(crate) struct DevArgs {
    /// Use this dev chain (whose default accounts are funded) instead of starting anvil.
    #[arg(long = "rpc-url", env = "BEATSTREAM_DEV_RPC_URL")]
    pub(crate) rpc_url: Option<Url>,
    /// Simulated players streaming real signed vouchers to the relay.
    #[arg(long, env = "BEATSTREAM_DEV_LISTENERS", default_value_t = DEFAULT_DEV_LISTENERS)]
    pub(crate) listeners: usize,
    /// Where the GraphQL API listens.
    #[arg(long, env = "BEATSTREAM_DEV_API_LISTEN", default_value = DEFAULT_DEV_API_LISTEN)]
    pub(crate) api_listen: SocketAddr,
    /// Where the relay listens.
    #[arg(long, env = "BEATSTREAM_DEV_RELAY_LISTEN", default_value = DEFAULT_DEV_RELAY_LISTEN)]
    pub(crate) relay_listen: SocketAddr,
    /// Once the demo is ready, write the node's addresses, deployment and demo accounts and tracks here as JSON
    /// (for SDK tests and tools; docs/CONFIGURATION.md).
    #[arg(long, env = "BEATSTREAM_DEV_INFO_FILE")]
    pub(crate) info_file: Option<std::path::PathBuf>,
}

impl Default for DevArgs {
    fn default() -> Self {
        Self {
            rpc_url: None,
            listeners: DEFAULT_DEV_LISTENERS,
            api_listen: DEFAULT_DEV_API_LISTEN.parse().expect("a valid default address"),
            relay_listen: DEFAULT_DEV_RELAY_LISTEN.parse().expect("a valid default address"),
            info_file: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        // Catches duplicate flags and bad defaults, which clap only reports at run time.
        Cli::command().debug_assert();
    }

    /// Parses `args` with no `BEATSTREAM_*` variable in the way (clap reads them for every flag).
    fn parse(args: &[&str]) -> Cli {
        let set: Vec<_> = std::env::vars()
            .filter(|(k, _)| k.starts_with("BEATSTREAM_"))
            .map(|(k, _)| k)
            .collect();
        assert!(set.is_empty(), "run the CLI tests without {set:?} set");
        Cli::try_parse_from(args).expect("parses")
    }

    #[test]
    fn dev_without_flags_is_the_default() {
        let cli = parse(&["beatstream", "dev"]);
        let Command::Dev(args) = cli.command else { panic!("not dev") };
        assert_eq!(args, DevArgs::default());
        assert_eq!(cli.log_format, LogFormat::default());
    }

    #[test]
    fn node_without_flags_uses_the_services_defaults() {
        let cli = parse(&[
            "beatstream",
            "node",
            "--database-url",
            "postgres://x",
            "--rpc-url",
            "http://x",
        ]);
        let Command::Node(args) = cli.command else { panic!("not node") };
        assert_eq!(args.relay.listen.to_string(), beatstream_stream_relay::DEFAULT_LISTEN);
        assert_eq!(args.api, beatstream_graphql_api::Options::default());
        assert_eq!(args.keeper, beatstream_keeper::Options::default());
        assert_eq!(args.indexer, beatstream_indexer::Options::default());
        assert_eq!(args.studio, beatstream_studio::Options::default());
        assert!(
            !(args.no_indexer || args.no_relay || args.no_keeper || args.no_api || args.no_studio)
        );
    }

    /// Flags of a service that `beatstream node` does not take: it reads the chain and the vault from the deployment.
    const NOT_IN_NODE: &[(&str, &str)] =
        &[("relay", "chain-id"), ("relay", "vault"), ("api", "api-chain-id")];

    #[test]
    fn node_takes_every_flag_of_every_service_under_the_same_name_and_variable() {
        let cli = Cli::command();
        let node = cli.find_subcommand("node").expect("node");
        let flags = |cmd: &clap::Command| -> Vec<(String, Option<String>)> {
            cmd.get_arguments()
                .filter_map(|a| {
                    let env = a.get_env().map(|e| e.to_string_lossy().into_owned());
                    Some((a.get_long()?.to_owned(), env))
                })
                .collect()
        };
        let in_node = flags(node);
        let mut missing = Vec::new();
        for service in ["indexer", "relay", "keeper", "api"] {
            let cmd = cli.find_subcommand(service).expect("service");
            for flag in flags(cmd) {
                if NOT_IN_NODE.contains(&(service, flag.0.as_str())) {
                    continue;
                }
                if !in_node.contains(&flag) {
                    missing.push(format!("{service} --{} ({:?})", flag.0, flag.1));
                }
            }
        }
        assert!(missing.is_empty(), "beatstream node lacks: {missing:?}");
        for (service, flag) in NOT_IN_NODE {
            assert!(!in_node.iter().any(|f| f.0 == *flag), "node takes {service}'s --{flag}");
        }
    }

    #[test]
    fn parses_json_log_format_after_subcommand() {
        let cli = Cli::try_parse_from(["beatstream", "dev", "--log-format", "json"]).unwrap();
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(matches!(cli.command, Command::Dev(_)));
    }
}
