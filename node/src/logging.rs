//! Tracing subscriber set-up.

use std::io::IsTerminal;

use eyre::{WrapErr, eyre};
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// The filter without RUST_LOG: `info`, except Postgres' NOTICE messages that sqlx relays at info ("relation
/// \"_sqlx_migrations\" already exists, skipping" on every start): they are Postgres talking to itself, not news.
pub(crate) const DEFAULT_LOG_FILTER: &str = "info,sqlx::postgres::notice=warn";

/// Installs the global subscriber: level from RUST_LOG (default [`DEFAULT_LOG_FILTER`]), output to stderr
/// so stdout stays for command results such as `migrate`'s list.
pub(crate) fn init(format: LogFormat) -> eyre::Result<()> {
    // A typo in RUST_LOG should stop start-up, not silently log at the default level.
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) => EnvFilter::try_new(&directives)
            .wrap_err_with(|| format!("invalid RUST_LOG {directives:?}"))?,
        Err(_) => EnvFilter::new(DEFAULT_LOG_FILTER),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Pretty => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| eyre!(e))
}
