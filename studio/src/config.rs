//! Command-line and environment settings: each default is a `DEFAULT_*` constant, used by clap and by `Default`.

use std::path::PathBuf;

use crate::{Error, Result, siwe};

/// Default `--studio-deployment`: the dev chain's deployment file.
pub const DEFAULT_DEPLOYMENT: &str = "deployments/31337.json";
/// Default `--studio-domain`: the API's default listen address, where the node mounts the studio.
pub const DEFAULT_DOMAIN: &str = "127.0.0.1:8080";
/// Default `--studio-nonce-ttl-secs`: ten minutes to sign.
pub const DEFAULT_NONCE_TTL_SECS: u64 = 600;
/// Default `--studio-session-ttl-secs`: a day.
pub const DEFAULT_SESSION_TTL_SECS: u64 = 86_400;
/// Default `--studio-db-connections`.
pub const DEFAULT_DB_CONNECTIONS: u32 = 4;

/// Settings of the studio; every flag can also come from its `BEATSTREAM_*` variable.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Postgres: URL, TLS, pooler, migrations. The studio writes (nonces, sessions): the primary, not a replica.
    #[command(flatten)]
    pub database: beatstream_primitives::db::DatabaseArgs,
    /// Ethereum JSON-RPC endpoints, retries and TLS: ERC-1271 signatures and who manages an artist name.
    #[command(flatten)]
    pub rpc: beatstream_primitives::rpc::RpcArgs,
    /// Everything else, shared with `beatstream node`.
    #[command(flatten)]
    pub options: Options,
}

/// The studio's own settings.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct Options {
    /// Deployment file: the chain id sign-in messages must name, the registry and `beatstream.eth`'s node.
    #[arg(long = "studio-deployment", env = "BEATSTREAM_DEPLOYMENT", default_value = DEFAULT_DEPLOYMENT)]
    pub deployment: PathBuf,
    /// The RFC 3986 authority (host, and port unless it is the scheme's default) that artists' browsers show for
    /// the studio, e.g. `studio.example.com`: sign-in messages must name exactly this `domain`. Set it whenever the
    /// studio is reached elsewhere than the API's default address (another --api-listen, a proxy, a public name).
    #[arg(long = "studio-domain", env = "BEATSTREAM_STUDIO_DOMAIN", default_value = DEFAULT_DOMAIN)]
    pub domain: String,
    /// Seconds a sign-in nonce can be used after it is issued.
    #[arg(
        long = "studio-nonce-ttl-secs",
        env = "BEATSTREAM_STUDIO_NONCE_TTL_SECS",
        default_value_t = DEFAULT_NONCE_TTL_SECS
    )]
    pub nonce_ttl_secs: u64,
    /// Seconds a session lasts after sign-in (less when the signed message expires sooner).
    #[arg(
        long = "studio-session-ttl-secs",
        env = "BEATSTREAM_STUDIO_SESSION_TTL_SECS",
        default_value_t = DEFAULT_SESSION_TTL_SECS
    )]
    pub session_ttl_secs: u64,
    /// Postgres connections of the studio.
    #[arg(
        long = "studio-db-connections",
        env = "BEATSTREAM_STUDIO_DB_CONNECTIONS",
        default_value_t = DEFAULT_DB_CONNECTIONS
    )]
    pub db_connections: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            deployment: DEFAULT_DEPLOYMENT.into(),
            domain: DEFAULT_DOMAIN.to_owned(),
            nonce_ttl_secs: DEFAULT_NONCE_TTL_SECS,
            session_ttl_secs: DEFAULT_SESSION_TTL_SECS,
            db_connections: DEFAULT_DB_CONNECTIONS,
        }
    }
}

impl Options {
    /// The defaults, for the deployment file at `deployment` (what `beatstream node` and tests start from).
    pub fn new(deployment: PathBuf) -> Self {
        Self { deployment, ..Self::default() }
    }

    /// Checks values that parse but make no sense, saying what to change.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(Error::Config(m));
        if self.domain.contains("://") || self.domain.contains('/') {
            return fail(format!(
                "--studio-domain {:?} must be a host and port only (an RFC 3986 authority such as \
                 studio.example.com or 127.0.0.1:8080), without a scheme or a path",
                self.domain
            ));
        }
        if self.domain.is_empty() || !siwe::is_authority(&self.domain) {
            return fail(format!(
                "--studio-domain {:?} is not an RFC 3986 authority: give a host and an optional port, such as \
                 studio.example.com or 127.0.0.1:8080",
                self.domain
            ));
        }
        if self.nonce_ttl_secs == 0 || self.session_ttl_secs == 0 || self.db_connections == 0 {
            return fail(
                "--studio-nonce-ttl-secs, --studio-session-ttl-secs and --studio-db-connections must be at least 1"
                    .into(),
            );
        }
        // Postgres intervals are built from these seconds; a century is plenty and keeps them in range.
        const CENTURY: u64 = 100 * 365 * 86_400;
        if self.nonce_ttl_secs > CENTURY || self.session_ttl_secs > CENTURY {
            return fail(
                "--studio-nonce-ttl-secs and --studio-session-ttl-secs must be below a century"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    /// Parsing no flags (the database URL aside, which has no default) gives [`Options::default`].
    #[test]
    fn no_flags_parse_to_the_defaults() {
        Cli::command().debug_assert();
        let matches = Cli::command()
            .try_get_matches_from(["studio", "--database-url", "postgres://x"])
            .unwrap();
        let parsed = Cli::from_arg_matches(&matches).unwrap().config.options;
        assert_eq!(parsed, Options::default());
        assert_eq!(Options::new(DEFAULT_DEPLOYMENT.into()), Options::default());
        parsed.validate().unwrap();
    }

    #[test]
    fn bad_values_say_what_to_change() {
        for (domain, says) in [
            ("https://studio.example", "without a scheme"),
            ("studio.example/studio", "without a scheme or a path"),
            ("studio example", "not an RFC 3986 authority"),
            ("", "not an RFC 3986 authority"),
        ] {
            let e = Options { domain: domain.into(), ..Options::default() }.validate().unwrap_err();
            assert!(e.to_string().contains(says), "{domain:?}: {e}");
        }
        for domain in ["studio.example.com", "localhost:3000", "[::1]:8080"] {
            Options { domain: domain.into(), ..Options::default() }.validate().unwrap();
        }
        let e = Options { nonce_ttl_secs: 0, ..Options::default() }.validate().unwrap_err();
        assert!(e.to_string().contains("--studio-nonce-ttl-secs"), "{e}");
    }
}
