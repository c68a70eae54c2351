//! The `--rpc-*` flags, one definition flattened into every service's settings and `beatstream node`'s.

use std::path::PathBuf;

use url::Url;

use crate::{Error, Result};

/// Default `--rpc-timeout-secs`.
pub const DEFAULT_RPC_TIMEOUT_SECS: u64 = 30;
/// Default `--rpc-retries`.
pub const DEFAULT_RPC_RETRIES: u32 = 8;
/// Default `--rpc-backoff-ms`.
pub const DEFAULT_RPC_BACKOFF_MS: u64 = 250;
/// Default `--rpc-backoff-max-ms`.
pub const DEFAULT_RPC_BACKOFF_MAX_MS: u64 = 30_000;
/// Default `--rpc-cooldown-secs`.
pub const DEFAULT_RPC_COOLDOWN_SECS: u64 = 30;

/// How a service reaches the chain; every flag can also come from its `BEATSTREAM_*` variable.
#[derive(Clone, PartialEq, Eq, clap::Args)]
pub struct RpcArgs {
    /// Ethereum JSON-RPC endpoints (http://, https://, ws:// or wss://), most preferred first: comma-separated, or
    /// the flag repeated. The first that answers is used; one that fails is passed over for --rpc-cooldown-secs.
    #[arg(
        long = "rpc-url",
        env = "BEATSTREAM_RPC_URL",
        value_delimiter = ',',
        value_parser = parse_rpc_url,
        hide_env_values = true
    )]
    pub rpc_url: Vec<Url>,
    /// PEM file of certificate authorities to trust for https:// and wss:// endpoints, besides the system's (which
    /// honour SSL_CERT_FILE and SSL_CERT_DIR).
    #[arg(long, env = "BEATSTREAM_RPC_CA_FILE")]
    pub rpc_ca_file: Option<PathBuf>,
    /// Timeout of one RPC request on one endpoint, in seconds; a request that times out goes to the next endpoint.
    #[arg(long, env = "BEATSTREAM_RPC_TIMEOUT", default_value_t = DEFAULT_RPC_TIMEOUT_SECS)]
    pub rpc_timeout_secs: u64,
    /// Times a request is asked again after a rate limit (HTTP 429, -32005, "compute units") or an overloaded
    /// endpoint (HTTP 502, 503, 504), before the error reaches the service.
    #[arg(long, env = "BEATSTREAM_RPC_RETRIES", default_value_t = DEFAULT_RPC_RETRIES)]
    pub rpc_retries: u32,
    /// First pause before asking again, in milliseconds; it doubles each time (with jitter) unless the provider
    /// names one (Retry-After, "try again in 2s").
    #[arg(long, env = "BEATSTREAM_RPC_BACKOFF_MS", default_value_t = DEFAULT_RPC_BACKOFF_MS)]
    pub rpc_backoff_ms: u64,
    /// Longest pause before asking again, in milliseconds, the provider's own included.
    #[arg(long, env = "BEATSTREAM_RPC_BACKOFF_MAX_MS", default_value_t = DEFAULT_RPC_BACKOFF_MAX_MS)]
    pub rpc_backoff_max_ms: u64,
    /// Seconds a failing endpoint is passed over (at least as long as its Retry-After) before it is tried first
    /// again. Only matters with several --rpc-url.
    #[arg(long, env = "BEATSTREAM_RPC_COOLDOWN_SECS", default_value_t = DEFAULT_RPC_COOLDOWN_SECS)]
    pub rpc_cooldown_secs: u64,
}

impl RpcArgs {
    /// The endpoints `urls`, most preferred first, with the default settings.
    pub fn new(urls: impl IntoIterator<Item = Url>) -> Self {
        Self { rpc_url: urls.into_iter().collect(), ..Self::default() }
    }

    /// Checks the settings once at start-up, saying what to change.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(Error::Config(m));
        if self.rpc_url.is_empty() {
            return fail(
                "no JSON-RPC endpoint: set --rpc-url (or BEATSTREAM_RPC_URL), several comma-separated".into(),
            );
        }
        if let Some(url) = self.rpc_url.iter().find(|u| check_url(u).is_err()) {
            return fail(check_url(url).unwrap_err());
        }
        if self.rpc_timeout_secs == 0 {
            return fail("--rpc-timeout-secs must be at least 1 second".into());
        }
        if self.rpc_backoff_ms == 0 || self.rpc_backoff_ms > self.rpc_backoff_max_ms {
            return fail(
                "--rpc-backoff-ms must be at least 1 and at most --rpc-backoff-max-ms".into(),
            );
        }
        super::tls::Roots::load(self.rpc_ca_file.as_deref())?;
        Ok(())
    }
}

impl Default for RpcArgs {
    /// No endpoint, and the defaults of every other flag.
    fn default() -> Self {
        Self {
            rpc_url: Vec::new(),
            rpc_ca_file: None,
            rpc_timeout_secs: DEFAULT_RPC_TIMEOUT_SECS,
            rpc_retries: DEFAULT_RPC_RETRIES,
            rpc_backoff_ms: DEFAULT_RPC_BACKOFF_MS,
            rpc_backoff_max_ms: DEFAULT_RPC_BACKOFF_MAX_MS,
            rpc_cooldown_secs: DEFAULT_RPC_COOLDOWN_SECS,
        }
    }
}

impl From<Url> for RpcArgs {
    /// One endpoint, with the defaults.
    fn from(url: Url) -> Self {
        Self::new([url])
    }
}

impl std::fmt::Debug for RpcArgs {
    /// Endpoint URLs may carry API keys: only their scheme, host and port are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcArgs")
            .field("rpc_url", &self.rpc_url.iter().map(endpoint_label).collect::<Vec<_>>())
            .field("rpc_ca_file", &self.rpc_ca_file)
            .field("rpc_timeout_secs", &self.rpc_timeout_secs)
            .field("rpc_retries", &self.rpc_retries)
            .field("rpc_backoff_ms", &self.rpc_backoff_ms)
            .field("rpc_backoff_max_ms", &self.rpc_backoff_max_ms)
            .field("rpc_cooldown_secs", &self.rpc_cooldown_secs)
            .finish()
    }
}

/// Parses one `--rpc-url`: an absolute http, https, ws or wss URL with a host.
pub fn parse_rpc_url(s: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("not a URL ({e})"))?;
    check_url(&url)?;
    Ok(url)
}

fn check_url(url: &Url) -> std::result::Result<(), String> {
    if !matches!(url.scheme(), "http" | "https" | "ws" | "wss") {
        return Err(unsupported_scheme(url));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("RPC URL {} has no host", endpoint_label(url)));
    }
    Ok(())
}

/// The error for a URL whose scheme no transport speaks.
pub(super) fn unsupported_scheme(url: &Url) -> String {
    format!(
        "unsupported scheme `{}` in an RPC URL: use http://, https://, ws:// or wss://",
        url.scheme()
    )
}

/// What logs and errors show of an endpoint: its scheme, host and port, and `/…` when a path or query (often an
/// API key) was left out.
pub fn endpoint_label(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let elided = if url.path() != "/" || url.query().is_some() { "/…" } else { "" };
    format!("{}://{host}{port}{elided}", url.scheme())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        rpc: RpcArgs,
    }

    fn parse(args: &[&str]) -> std::result::Result<RpcArgs, clap::Error> {
        let matches = Cli::command()
            .try_get_matches_from(std::iter::once("x").chain(args.iter().copied()))?;
        Ok(Cli::from_arg_matches(&matches)?.rpc)
    }

    #[test]
    fn no_flags_parse_to_the_defaults() {
        Cli::command().debug_assert();
        assert_eq!(parse(&[]).unwrap(), RpcArgs::default());
    }

    #[test]
    fn urls_are_repeated_or_comma_separated_in_order() {
        let args = parse(&[
            "--rpc-url",
            "https://a.example/v2/key,wss://b.example",
            "--rpc-url",
            "http://c:8545",
        ])
        .unwrap();
        let urls: Vec<&str> = args.rpc_url.iter().map(Url::as_str).collect();
        assert_eq!(urls, ["https://a.example/v2/key", "wss://b.example/", "http://c:8545/"]);
        args.validate().unwrap();
    }

    #[test]
    fn the_variable_takes_several_urls_comma_separated() {
        // The real flag's definition, reading a variable no other test sets.
        const VAR: &str = "BEATSTREAM_TEST_RPC_URL_LIST";
        // SAFETY: no other test of this binary reads or writes this variable.
        unsafe { std::env::set_var(VAR, "https://a.example, wss://b.example/ws") };
        // clap reads the variable when the argument is given it.
        let cmd = Cli::command().mut_arg("rpc_url", |a| a.env(VAR));
        let matches = cmd.try_get_matches_from(["x"]).unwrap();
        let urls: Vec<String> = Cli::from_arg_matches(&matches)
            .unwrap()
            .rpc
            .rpc_url
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(urls, ["https://a.example/", "wss://b.example/ws"]);
    }

    #[test]
    fn bad_urls_are_refused_with_what_to_use() {
        let e = parse(&["--rpc-url", "ftp://a.example"]).unwrap_err().to_string();
        assert!(
            e.contains(
                "unsupported scheme `ftp` in an RPC URL: use http://, https://, ws:// or wss://"
            ),
            "{e}"
        );
        let e = parse(&["--rpc-url", "localhost:8545"]).unwrap_err().to_string();
        assert!(e.contains("unsupported scheme `localhost`"), "{e}");
        let e = parse(&["--rpc-url", "not a url"]).unwrap_err().to_string();
        assert!(e.contains("not a URL"), "{e}");
        let e = RpcArgs::default().validate().unwrap_err().to_string();
        assert!(e.contains("set --rpc-url (or BEATSTREAM_RPC_URL)"), "{e}");
    }

    #[test]
    fn labels_and_debug_never_show_keys() {
        let url: Url = "https://user:secret@eth.example:8443/v2/secret?key=secret".parse().unwrap();
        assert_eq!(endpoint_label(&url), "https://eth.example:8443/…");
        assert_eq!(endpoint_label(&"ws://127.0.0.1:8545".parse().unwrap()), "ws://127.0.0.1:8545");
        let debug = format!("{:?}", RpcArgs::from(url));
        assert!(!debug.contains("secret"), "{debug}");
    }
}
