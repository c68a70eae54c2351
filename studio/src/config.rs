//! Command-line and environment settings: each default is a `DEFAULT_*` constant, used by clap and by `Default`.

use std::path::PathBuf;

use crate::{Error, Result, siwe};

/// Default `--deployment`: the dev chain's deployment file.
pub const DEFAULT_DEPLOYMENT: &str = "deployments/31337.json";
/// Default `--studio-domain`: the API's default listen address, where the node mounts the studio.
pub const DEFAULT_DOMAIN: &str = "127.0.0.1:8080";
/// Default `--studio-nonce-ttl-secs`: ten minutes to sign.
pub const DEFAULT_NONCE_TTL_SECS: u64 = 600;
/// Default `--studio-session-ttl-secs`: a day.
pub const DEFAULT_SESSION_TTL_SECS: u64 = 86_400;
/// Default `--studio-db-connections`.
pub const DEFAULT_DB_CONNECTIONS: u32 = 4;
/// Default `--storage-url`: the directory `data/audio` under the working directory.
pub const DEFAULT_STORAGE_URL: &str = "data/audio";
/// Default `--studio-max-upload-bytes`: 200 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 200 * 1024 * 1024;
/// Default `--studio-max-duration-secs`: 30 minutes.
pub const DEFAULT_MAX_DURATION_SECS: u64 = 30 * 60;

/// Settings of the studio; every flag can also come from its `BEATSTREAM_*` variable.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Postgres: URL, TLS, pooler, migrations. The studio writes (nonces, sessions): the primary, not a replica.
    #[command(flatten)]
    pub database: beatstream_primitives::db::DatabaseArgs,
    /// Ethereum JSON-RPC endpoints, retries and TLS: ERC-1271 signatures and who manages an artist name.
    #[command(flatten)]
    pub rpc: beatstream_primitives::rpc::RpcArgs,
    /// Deployment file: the chain id sign-in messages must name, the registry and `beatstream.eth`'s node.
    #[arg(long, env = "BEATSTREAM_DEPLOYMENT", default_value = DEFAULT_DEPLOYMENT)]
    pub deployment: PathBuf,
    /// The node's audio key, shared with the relay: it seals each track's secret. Without it uploads are refused
    /// with `audio_key_missing`; sign-in and serving still work.
    #[command(flatten)]
    pub audio_key: beatstream_primitives::audio_key::AudioKeyArgs,
    /// The studio's own settings, the same flags in `beatstream node`.
    #[command(flatten)]
    pub options: Options,
}

/// The studio's own settings.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
#[group(id = "studio_options")]
pub struct Options {
    /// The RFC 3986 authority (host, and port unless it is the scheme's default) that artists' browsers show for
    /// the studio, e.g. `studio.example.com`: sign-in messages must name exactly this `domain`. Set it whenever the
    /// studio is reached elsewhere than the API's default address (another --api-listen, a proxy, a public name).
    #[arg(long = "studio-domain", id = "studio_domain", env = "BEATSTREAM_STUDIO_DOMAIN", default_value = DEFAULT_DOMAIN)]
    pub domain: String,
    /// Seconds a sign-in nonce can be used after it is issued.
    #[arg(
        long = "studio-nonce-ttl-secs", id = "studio_nonce_ttl_secs",
        env = "BEATSTREAM_STUDIO_NONCE_TTL_SECS",
        default_value_t = DEFAULT_NONCE_TTL_SECS
    )]
    pub nonce_ttl_secs: u64,
    /// Seconds a session lasts after sign-in (less when the signed message expires sooner).
    #[arg(
        long = "studio-session-ttl-secs", id = "studio_session_ttl_secs",
        env = "BEATSTREAM_STUDIO_SESSION_TTL_SECS",
        default_value_t = DEFAULT_SESSION_TTL_SECS
    )]
    pub session_ttl_secs: u64,
    /// Postgres connections of the studio.
    #[arg(
        long = "studio-db-connections", id = "studio_db_connections",
        env = "BEATSTREAM_STUDIO_DB_CONNECTIONS",
        default_value_t = DEFAULT_DB_CONNECTIONS
    )]
    pub db_connections: u32,
    /// Where uploaded audio is stored: a directory (a path, relative to the working directory, or a `file:///`
    /// URL), or `s3://<bucket>/<prefix>` for an S3-compatible store, whose region, credentials and endpoint come
    /// from the standard `AWS_*` variables (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_ENDPOINT_URL`, ...) or --storage-s3-endpoint.
    #[arg(long = "storage-url", id = "storage_url", env = "BEATSTREAM_STORAGE_URL", default_value = DEFAULT_STORAGE_URL)]
    pub storage_url: String,
    /// The endpoint of an S3-compatible store other than AWS (MinIO, Ceph, moto...), e.g. `http://127.0.0.1:9000`;
    /// overrides `AWS_ENDPOINT_URL`. Requests go path-style; `http://` is allowed when given here.
    #[arg(
        long = "storage-s3-endpoint",
        id = "storage_s3_endpoint",
        env = "BEATSTREAM_STORAGE_S3_ENDPOINT"
    )]
    pub storage_s3_endpoint: Option<String>,
    /// Largest upload in bytes; a larger one is refused (`audio_too_large`) while it streams in.
    #[arg(
        long = "studio-max-upload-bytes", id = "studio_max_upload_bytes",
        env = "BEATSTREAM_STUDIO_MAX_UPLOAD_BYTES",
        default_value_t = DEFAULT_MAX_UPLOAD_BYTES
    )]
    pub max_upload_bytes: u64,
    /// Longest track in seconds; a longer one is refused (`audio_too_long`).
    #[arg(
        long = "studio-max-duration-secs", id = "studio_max_duration_secs",
        env = "BEATSTREAM_STUDIO_MAX_DURATION_SECS",
        default_value_t = DEFAULT_MAX_DURATION_SECS
    )]
    pub max_duration_secs: u64,
    /// Directory for uploads while they stream in and are cut (each removed when its upload ends); the system's
    /// temporary directory when not set. It needs room for --studio-max-upload-bytes per upload in progress.
    #[arg(
        long = "studio-upload-dir",
        id = "studio_upload_dir",
        env = "BEATSTREAM_STUDIO_UPLOAD_DIR"
    )]
    pub upload_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            domain: DEFAULT_DOMAIN.to_owned(),
            nonce_ttl_secs: DEFAULT_NONCE_TTL_SECS,
            session_ttl_secs: DEFAULT_SESSION_TTL_SECS,
            db_connections: DEFAULT_DB_CONNECTIONS,
            storage_url: DEFAULT_STORAGE_URL.to_owned(),
            storage_s3_endpoint: None,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            max_duration_secs: DEFAULT_MAX_DURATION_SECS,
            upload_dir: None,
        }
    }
}

impl Options {
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
        if self.nonce_ttl_secs == 0
            || self.session_ttl_secs == 0
            || self.db_connections == 0
            || self.max_upload_bytes == 0
            || self.max_duration_secs == 0
        {
            return fail(
                "--studio-nonce-ttl-secs, --studio-session-ttl-secs, --studio-db-connections, \
                 --studio-max-upload-bytes and --studio-max-duration-secs must be at least 1"
                    .into(),
            );
        }
        crate::storage::Location::parse(&self.storage_url)?;
        if self.max_duration_secs > u64::from(u32::MAX) {
            return fail(format!(
                "--studio-max-duration-secs {} is more than a track can last (its seconds are a uint32 on chain)",
                self.max_duration_secs
            ));
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
        let e = Options { max_upload_bytes: 0, ..Options::default() }.validate().unwrap_err();
        assert!(e.to_string().contains("--studio-max-upload-bytes"), "{e}");
        let e =
            Options { max_duration_secs: 1 << 40, ..Options::default() }.validate().unwrap_err();
        assert!(e.to_string().contains("--studio-max-duration-secs"), "{e}");
    }
}
