//! One HTTP(S) endpoint: a JSON-RPC request per POST on `reqwest`.
//!
//! alloy's own HTTP transport reads `Retry-After` only as seconds, and hands back a 429 whose body is a JSON-RPC
//! error as that error, dropping the header; this one keeps it, in either form, and never puts the URL (which may
//! hold an API key) in an error.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use alloy::{
    rpc::json_rpc::{RequestPacket, ResponsePacket},
    transports::{TransportError, TransportErrorKind, TransportFut, TransportResult},
};
use reqwest::header::RETRY_AFTER;
use url::Url;

use super::{endpoint_label, tls::Roots};
use crate::{Error, Result};

/// Why an endpoint gave no answer at all; its display names the endpoint by [`endpoint_label`] only.
#[derive(Debug, thiserror::Error)]
pub(super) enum EndpointFailure {
    /// Nothing came back within the per-attempt timeout.
    #[error("{endpoint}: no answer within {after:?} (--rpc-timeout-secs)")]
    TimedOut {
        /// The endpoint's label.
        endpoint: String,
        /// The timeout.
        after: Duration,
    },
    /// The endpoint named a pause (`Retry-After`) that is not over: it is not asked before then.
    #[error("{endpoint}: rate-limited, asked to wait {remaining:?} more")]
    Waiting {
        /// The endpoint's label.
        endpoint: String,
        /// What is left of the pause.
        remaining: Duration,
    },
    /// The request could not be sent or its answer not read (refused connection, TLS, reset).
    #[error("{endpoint}: {reason}")]
    Unreachable {
        /// The endpoint's label.
        endpoint: String,
        /// What failed, with its causes.
        reason: String,
    },
}

/// An HTTP or HTTPS JSON-RPC endpoint.
#[derive(Clone, Debug)]
pub(super) struct HttpEndpoint {
    client: reqwest::Client,
    url: Url,
    label: Arc<str>,
}

impl HttpEndpoint {
    /// An endpoint at `url` whose TLS trusts the system's roots and `roots`.
    pub(super) fn new(url: Url, roots: &Roots) -> Result<Self> {
        let label: Arc<str> = endpoint_label(&url).into();
        let mut builder = reqwest::Client::builder();
        if !roots.is_empty() {
            builder = builder.tls_certs_merge(roots.reqwest()?);
        }
        let client = builder.build().map_err(|e| {
            Error::Config(format!("cannot set up HTTP for {label}: {}", causes(&e.without_url())))
        })?;
        Ok(Self { client, url, label })
    }

    async fn request(self, req: RequestPacket) -> TransportResult<ResponsePacket> {
        let unreachable = |e: reqwest::Error| {
            TransportErrorKind::custom(EndpointFailure::Unreachable {
                endpoint: self.label.to_string(),
                reason: causes(&e.without_url()),
            })
        };
        let resp = self
            .client
            .post(self.url.clone())
            .headers(req.headers())
            .json(&req)
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = resp.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| TransportError::deser_err(e, String::from_utf8_lossy(&body)));
        }
        let http_error = || {
            TransportErrorKind::http_error_with_retry_after(
                status.as_u16(),
                excerpt(&body),
                retry_after,
            )
        };
        // Rate limits and gateway failures whatever their body says, so their Retry-After is kept.
        if matches!(status.as_u16(), 429 | 502 | 503 | 504) {
            return Err(http_error());
        }
        // Some nodes answer a JSON-RPC error (a revert, bad parameters) with a 4xx or 500: still the node's answer.
        match serde_json::from_slice::<ResponsePacket>(&body) {
            Ok(packet) if packet.is_error() => Ok(packet),
            _ => Err(http_error()),
        }
    }
}

impl tower::Service<RequestPacket> for HttpEndpoint {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: RequestPacket) -> Self::Future {
        Box::pin(self.clone().request(req))
    }
}

/// `Retry-After` as seconds ("120", "1.5") or as an HTTP date (the pause until then, none if it has passed).
pub(super) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An error with its causes, each once: "error sending request: client error (Connect): tcp connect error: ...".
pub(super) fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

/// The start of a body for an error message (a gateway's HTML page can be long).
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 1.5 ", now), Some(Duration::from_millis(1500)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn long_bodies_are_cut() {
        assert_eq!(excerpt(b"short"), "short");
        assert_eq!(excerpt(&[b'x'; 400]).chars().count(), 301);
    }
}
