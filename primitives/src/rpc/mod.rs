//! The one way the services reach an Ethereum JSON-RPC node: [`RpcArgs`] (the `--rpc-*` flags every service and
//! `beatstream node` flatten) and [`provider`], which turns them into a provider.
//!
//! Each request goes through two layers before it reaches a node:
//!
//! - **Retry** ([`retry`]): an answer meaning "not now" (HTTP 429, 502, 503 or 504, a JSON-RPC rate-limit error
//!   such as -32005 "rate limit exceeded" or "exceeded its compute units") is asked again after a pause: the one
//!   the provider names (`Retry-After` in seconds or as a date, "try again in 2s", Infura's `backoff_seconds`),
//!   else `--rpc-backoff-ms` doubling up to `--rpc-backoff-max-ms`, with jitter; at most `--rpc-retries` times.
//!   An endpoint that cannot be reached or does not answer in time is not asked again here: the next endpoint is,
//!   and the service decides what comes after (the keeper's next step, the indexer's smaller range).
//! - **Failover** ([`failover`]): with several `--rpc-url`s, the first that answers wins, in the order given. An
//!   endpoint that fails (connection, TLS, timeout, 5xx, rate limit, 4xx) is passed over for
//!   `--rpc-cooldown-secs`, then tried first again. One that does not serve a method (-32601) is passed over for
//!   that request only.
//!
//! Under them each endpoint is its own transport: HTTP(S) on `reqwest` ([`http`]), or a WebSocket connected on
//! first use and again after it drops ([`ws`]). TLS is rustls on `ring` ([`crate::tls`]), trusting the system's
//! roots (which honour `SSL_CERT_FILE`) plus those of `--rpc-ca-file`.
//!
//! Endpoint URLs often carry an API key (in the path, the query or the user part), so nothing here logs or
//! displays more of a URL than its scheme, host and port ([`endpoint_label`]).

mod args;
mod classify;
mod failover;
mod http;
mod retry;
mod tls;
mod ws;

use std::time::Duration;

use alloy::{
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::client::RpcClient,
    transports::BoxTransport,
};

pub use args::{
    DEFAULT_RPC_BACKOFF_MAX_MS, DEFAULT_RPC_BACKOFF_MS, DEFAULT_RPC_COOLDOWN_SECS,
    DEFAULT_RPC_RETRIES, DEFAULT_RPC_TIMEOUT_SECS, RpcArgs, endpoint_label, parse_rpc_url,
};
pub use classify::{is_method_not_found, is_rate_limited, suggested_wait};

use crate::{Error, Result};

/// A provider over every endpoint of `args`, with retries and failover; nothing is connected yet (WebSockets
/// connect on first use), so an endpoint that is down at start is only passed over.
///
/// Fails when no endpoint is given or the CA file cannot be used.
pub fn provider(args: &RpcArgs) -> Result<DynProvider> {
    Ok(ProviderBuilder::new().connect_client(client(args)?).erased())
}

/// The RPC client under [`provider`], for a caller that builds its own provider (with a wallet, say).
pub fn client(args: &RpcArgs) -> Result<RpcClient> {
    crate::tls::install_crypto_provider();
    args.validate()?;
    let tls = tls::Roots::load(args.rpc_ca_file.as_deref())?;
    let timeout = Duration::from_secs(args.rpc_timeout_secs);
    let mut endpoints = Vec::with_capacity(args.rpc_url.len());
    for url in &args.rpc_url {
        let transport = match url.scheme() {
            "http" | "https" => BoxTransport::new(http::HttpEndpoint::new(url.clone(), &tls)?),
            "ws" | "wss" => BoxTransport::new(ws::WsEndpoint::new(url.clone(), &tls)?),
            _ => return Err(Error::Config(args::unsupported_scheme(url))),
        };
        endpoints.push(failover::Endpoint::new(endpoint_label(url), transport));
    }
    let is_local =
        args.rpc_url.iter().all(|u| alloy::transports::utils::guess_local_url(u.as_str()));
    let failover =
        failover::Failover::new(endpoints, timeout, Duration::from_secs(args.rpc_cooldown_secs));
    let retry = retry::RetryLayer::new(retry::Backoff {
        retries: args.rpc_retries,
        initial: Duration::from_millis(args.rpc_backoff_ms),
        max: Duration::from_millis(args.rpc_backoff_max_ms),
    });
    Ok(RpcClient::builder().layer(retry).transport(failover, is_local))
}
