//! What a failed request means for the next try: wait and ask again, ask another endpoint, or hand the answer back.

use std::time::Duration;

use alloy::{
    rpc::json_rpc::{ErrorPayload, ResponsePacket},
    transports::{RpcError, TransportError, TransportErrorKind, TransportResult},
};

use super::http::EndpointFailure;

/// How a request on one endpoint went, as far as retrying and failing over are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// An answer: a result, or a JSON-RPC error retrying cannot change (a revert, bad parameters).
    Answered,
    /// The provider refuses for now (HTTP 429, a rate-limit or compute-unit error): wait (as long as it says, if it
    /// says) and ask again, here or elsewhere.
    RateLimited(Option<Duration>),
    /// The endpoint is overloaded or restarting behind its gateway (HTTP 502, 503, 504, 408): ask again.
    Unavailable(Option<Duration>),
    /// The endpoint cannot be reached (refused or reset connection, TLS, a WebSocket alloy gave up reconnecting):
    /// another endpoint may answer; this one is not asked again within the request, and the service's own retries
    /// (the indexer's and keeper's steps) come later.
    Down,
    /// No answer within the timeout: another endpoint may answer, asking this one again would wait as long.
    TimedOut,
    /// The endpoint turns this client away or fails (401, 403, other 4xx, 500): another endpoint may take it,
    /// retrying will not.
    Refused,
    /// This endpoint does not serve the method (-32601, "unsupported method"): another may.
    MethodNotFound,
}

impl Outcome {
    /// Whether the same request may succeed if asked again after a pause.
    pub(super) fn is_retryable(self) -> bool {
        matches!(self, Self::RateLimited(_) | Self::Unavailable(_))
    }

    /// Whether the endpoint should be passed over for a while.
    pub(super) fn is_endpoint_failure(self) -> bool {
        matches!(
            self,
            Self::RateLimited(_)
                | Self::Unavailable(_)
                | Self::Down
                | Self::TimedOut
                | Self::Refused
        )
    }

    /// The pause the provider asked for, if it did.
    pub(super) fn hint(self) -> Option<Duration> {
        match self {
            Self::RateLimited(hint) | Self::Unavailable(hint) => hint,
            _ => None,
        }
    }
}

/// Classifies what one endpoint returned for a request.
pub(super) fn classify(result: &TransportResult<ResponsePacket>) -> Outcome {
    match result {
        Ok(packet) => packet.as_error().map_or(Outcome::Answered, payload),
        Err(RpcError::ErrorResp(err)) => payload(err),
        Err(RpcError::Transport(kind)) => transport(kind),
        Err(RpcError::DeserError { text, .. }) if is_rate_limited(text) => {
            Outcome::RateLimited(suggested_wait(text))
        }
        Err(_) => Outcome::Answered,
    }
}

fn transport(kind: &TransportErrorKind) -> Outcome {
    let status = |status: u16, hint: Option<Duration>| match status {
        429 => Outcome::RateLimited(hint),
        408 | 502..=504 => Outcome::Unavailable(hint),
        _ => Outcome::Refused,
    };
    match kind {
        TransportErrorKind::HttpError(e) => status(e.status, None),
        TransportErrorKind::HttpErrorWithRetryAfter { error, retry_after } => {
            status(error.status, Some(*retry_after))
        }
        TransportErrorKind::MissingBatchResponse(_) => Outcome::Unavailable(None),
        TransportErrorKind::BackendGone => Outcome::Down,
        TransportErrorKind::Custom(e) => match e.downcast_ref::<EndpointFailure>() {
            Some(EndpointFailure::TimedOut { .. }) => Outcome::TimedOut,
            Some(EndpointFailure::Waiting { remaining, .. }) => {
                Outcome::RateLimited(Some(*remaining))
            }
            Some(EndpointFailure::Unreachable { .. }) => Outcome::Down,
            None if is_rate_limited(&e.to_string()) => Outcome::RateLimited(None),
            // Another I/O failure below JSON-RPC.
            None => Outcome::Down,
        },
        _ => Outcome::Answered,
    }
}

fn payload(err: &ErrorPayload) -> Outcome {
    // A revert is the contract's answer, whatever words or hex its message holds.
    if err.code == 3 || err.message.to_ascii_lowercase().contains("revert") {
        return Outcome::Answered;
    }
    if err.code == 429 || is_rate_limited(&err.message) {
        let hint = suggested_wait(&err.message).or_else(|| infura_backoff(err));
        return Outcome::RateLimited(hint);
    }
    if is_method_not_found(err.code, &err.message) {
        return Outcome::MethodNotFound;
    }
    Outcome::Answered
}

/// Infura's rate-limit errors carry the pause in `data.rate.backoff_seconds`.
fn infura_backoff(err: &ErrorPayload) -> Option<Duration> {
    let data: serde_json::Value = err.try_data_as()?.ok()?;
    let secs = data["rate"]["backoff_seconds"].as_f64()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// Whether an error (a JSON-RPC message, or any error text) says the provider is rate-limiting this client: HTTP 429,
/// "too many requests", "exceeded its compute units", "rate limit". The same request must wait and be asked again,
/// never split into more requests.
///
/// Error codes alone are not trusted: -32005 is Infura's rate limit but also its "query returned more than 10000
/// results".
pub fn is_rate_limited(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "error 429",
        "code 429",
        "status 429",
        "429 too many",
        "too many requests",
        "rate limit",
        "rate-limit",
        "ratelimit",
        "rate exceeded",
        "compute units",
        "capacity",
        "throughput",
        "requests per second",
        "request limit",
        "credits limited",
        "daily request count",
        "maximum number of concurrent requests",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// Whether a JSON-RPC error says the endpoint does not serve the method at all (rather than failing this call):
/// -32601, or a message like Infura's "does not exist/is not available" or Alchemy's "Unsupported method".
pub fn is_method_not_found(code: i64, message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    code == -32601
        || [
            "method not found",
            "does not exist/is not available",
            "unsupported method",
            "method not supported",
            "method is not supported",
            "not implemented",
            "unknown method",
            "method not available",
        ]
        .iter()
        .any(|p| m.contains(p))
}

/// How long a rate-limited provider asks to be left alone, when its message says: "retry after 3",
/// "try again in 2s", "retry in 1500ms", "Retry-After: 4" (seconds). At most a minute.
pub fn suggested_wait(message: &str) -> Option<Duration> {
    let m = message.to_ascii_lowercase();
    for key in ["retry-after:", "retry after", "try again in", "retry in", "backoff"] {
        let Some(at) = m.find(key) else { continue };
        let rest = m[at + key.len()..].trim_start_matches([' ', ':', '=']);
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        let Ok(value) = digits.parse::<f64>() else { continue };
        let unit = rest[digits.len()..].trim_start();
        let secs = if unit.starts_with("ms") || unit.starts_with("millisecond") {
            value / 1000.0
        } else {
            value
        };
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(60.0)));
        }
    }
    None
}

/// A transport error this layer made up (the last endpoint's error is kept whenever there is one).
pub(super) fn no_endpoint() -> TransportError {
    TransportErrorKind::custom_str("no JSON-RPC endpoint configured")
}

#[cfg(test)]
mod tests {
    use alloy::rpc::json_rpc::ErrorPayload;

    use super::*;

    fn error(json: &str) -> TransportResult<ResponsePacket> {
        Err(RpcError::ErrorResp(serde_json::from_str::<ErrorPayload>(json).unwrap()))
    }

    #[test]
    fn rate_limits_are_told_from_answers() {
        for (json, hint) in [
            (r#"{"code":-32005,"message":"rate limit exceeded, try again in 2s"}"#, Some(2_000)),
            (r#"{"code":429,"message":"Too Many Requests"}"#, None),
            (
                r#"{"code":-32005,"message":"daily request count exceeded, request rate limited","data":{"rate":{"backoff_seconds":30}}}"#,
                Some(30_000),
            ),
            (
                r#"{"code":-32007,"message":"Your app has exceeded its compute units per second capacity"}"#,
                None,
            ),
        ] {
            assert_eq!(
                classify(&error(json)),
                Outcome::RateLimited(hint.map(Duration::from_millis)),
                "{json}"
            );
        }
        // Infura's size limit shares the rate limit's code: it is an answer (the indexer splits the range).
        let size = r#"{"code":-32005,"message":"query returned more than 10000 results. Try with this block range [0x1, 0x2]."}"#;
        assert_eq!(classify(&error(size)), Outcome::Answered);
        assert_eq!(
            classify(&error(r#"{"code":3,"message":"execution reverted","data":"0x"}"#)),
            Outcome::Answered
        );
    }

    #[test]
    fn missing_methods_are_recognised() {
        for json in [
            r#"{"code":-32601,"message":"the method eth_simulateV1 does not exist/is not available"}"#,
            r#"{"code":-32600,"message":"Unsupported method: eth_simulateV1 on ETH_MAINNET"}"#,
            r#"{"code":-32000,"message":"Method not found"}"#,
        ] {
            assert_eq!(classify(&error(json)), Outcome::MethodNotFound, "{json}");
        }
        assert!(!is_method_not_found(-32000, "header not found"));
        assert!(!is_method_not_found(
            -32000,
            "missing trie node: historical state is not available"
        ));
    }

    #[test]
    fn http_statuses_and_failures() {
        let http = |status, retry_after| {
            Err(TransportErrorKind::http_error_with_retry_after(status, String::new(), retry_after))
        };
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(classify(&http(429, secs(3))), Outcome::RateLimited(secs(3)));
        assert_eq!(classify(&http(429, None)), Outcome::RateLimited(None));
        assert_eq!(classify(&http(503, secs(1))), Outcome::Unavailable(secs(1)));
        assert_eq!(classify(&http(502, None)), Outcome::Unavailable(None));
        assert_eq!(classify(&http(403, None)), Outcome::Refused);
        assert_eq!(classify(&http(500, None)), Outcome::Refused);
        let refused =
            EndpointFailure::Unreachable { endpoint: "http://x".into(), reason: "refused".into() };
        assert_eq!(classify(&Err(TransportErrorKind::custom(refused))), Outcome::Down);
        assert_eq!(
            classify(&Err(TransportErrorKind::custom(EndpointFailure::TimedOut {
                endpoint: "http://x".into(),
                after: Duration::from_secs(1)
            }))),
            Outcome::TimedOut
        );
        assert_eq!(classify(&Err(TransportErrorKind::backend_gone())), Outcome::Down);
        assert!(
            Outcome::RateLimited(None).is_retryable() && Outcome::Unavailable(None).is_retryable()
        );
        assert!(!Outcome::TimedOut.is_retryable() && !Outcome::Down.is_retryable());
        assert!(
            Outcome::TimedOut.is_endpoint_failure()
                && !Outcome::MethodNotFound.is_endpoint_failure()
        );
    }

    #[test]
    fn a_rate_limit_is_recognised_in_any_words() {
        for message in [
            "eth_getLogs: HTTP error 429 with body: Your app has exceeded its compute units per second capacity",
            "eth_getLogs: server returned an error response: error code 429: Too Many Requests",
            "eth_getLogs: server returned an error response: error code -32005: rate limit exceeded",
            "eth_getLogs: daily request count exceeded, request rate limited",
        ] {
            assert!(is_rate_limited(message), "{message}");
        }
        assert!(!is_rate_limited("query returned more than 10000 results"));
        assert!(!is_rate_limited("connection reset by peer"));
    }

    #[test]
    fn reads_the_wait_a_provider_asks_for() {
        assert_eq!(
            suggested_wait("429 Too Many Requests, Retry-After: 4"),
            Some(Duration::from_secs(4))
        );
        assert_eq!(suggested_wait("rate limited, try again in 2s"), Some(Duration::from_secs(2)));
        assert_eq!(
            suggested_wait("rate limited; retry in 1500ms"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(suggested_wait("retry after 3600"), Some(Duration::from_secs(60)), "capped");
        assert_eq!(suggested_wait("Too Many Requests"), None);
    }
}
