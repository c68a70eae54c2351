//! Adaptive `eth_getLogs` block ranges: grow on success, shrink on errors and on "too many results", and follow
//! the range a provider suggests when its error names one.

use std::sync::atomic::{AtomicU64, Ordering};

/// The current range size, shared by concurrent fetches.
#[derive(Debug)]
pub(crate) struct RangeSize {
    current: AtomicU64,
    min: u64,
    max: u64,
}

impl RangeSize {
    pub(crate) fn new(initial: u64, min: u64, max: u64) -> Self {
        Self { current: AtomicU64::new(initial.clamp(min, max)), min, max }
    }

    pub(crate) fn get(&self) -> u64 {
        self.current.load(Ordering::Relaxed)
    }

    /// After a range of `size` blocks returned `logs` logs: aim the next range at `target_logs` logs, changing the
    /// size by at most a factor of two either way (dense ranges shrink, sparse ones grow).
    pub(crate) fn succeeded(&self, size: u64, logs: usize, target_logs: usize) {
        let ideal = (size as u128 * target_logs as u128 / logs.max(1) as u128) as u64;
        let next = ideal.clamp(size / 2, size.saturating_mul(2)).clamp(self.min, self.max);
        self.current.store(next, Ordering::Relaxed);
    }

    /// After a failure on a range of `size` blocks: at most half of it, or what the provider suggested.
    pub(crate) fn failed(&self, size: u64, suggested: Option<u64>) -> u64 {
        let next = suggested.unwrap_or(size / 2).clamp(self.min, self.max).min(size.max(self.min));
        self.current.store(next, Ordering::Relaxed);
        next
    }
}

/// Whether an RPC error says the response would be too large (so the range must shrink, not just be retried). A
/// rate limit (`beatstream_primitives::rpc::is_rate_limited`) is never one, whatever words it uses.
pub(crate) fn is_too_many_results(message: &str) -> bool {
    if beatstream_primitives::rpc::is_rate_limited(message) {
        return false;
    }
    let m = message.to_ascii_lowercase();
    [
        "too many results",
        "too many logs",
        "more than",
        "log response size",
        "response size exceeded",
        "response is too big",
        "block range",
        "range is too large",
        "range too large",
        "query timeout",
        "returned more than",
        "too many blocks",
        "too large",
        "too wide",
        "limited to",
        "max results",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// The number of blocks a provider's error suggests, e.g. Alchemy's
/// "this block range should work: [0x1, 0x2]" or Infura's "Try with this block range [0x1, 0x2]".
pub(crate) fn suggested_range(message: &str) -> Option<u64> {
    let open = message.rfind('[')?;
    let close = open + message[open..].find(']')?;
    let mut parts = message[open + 1..close].split(',').map(|p| p.trim());
    let from = parse_block(parts.next()?)?;
    let to = parse_block(parts.next()?)?;
    (to >= from).then(|| to - from + 1)
}

fn parse_block(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_provider_suggestions() {
        assert_eq!(
            suggested_range(
                "Log response size exceeded. this block range should work: [0x10, 0x1f]"
            ),
            Some(16)
        );
        assert_eq!(
            suggested_range(
                "query returned more than 10000 results. Try with this block range [0x1B4, 0x1C7]."
            ),
            Some(20)
        );
        assert_eq!(suggested_range("something [12, 15]"), Some(4));
        assert_eq!(suggested_range("no range here"), None);
        assert_eq!(suggested_range("backwards [0x20, 0x10]"), None);
    }

    #[test]
    fn recognises_size_errors() {
        assert!(is_too_many_results("query returned more than 10000 results"));
        assert!(is_too_many_results("Log response size exceeded"));
        assert!(is_too_many_results("eth_getLogs: block range is too large"));
        assert!(is_too_many_results("eth_getLogs: query timeout exceeded"));
        assert!(is_too_many_results("exceed maximum block range: 50000"));
        assert!(is_too_many_results("eth_getLogs is limited to a 10,000 range"));
        assert!(!is_too_many_results("connection reset by peer"));
    }

    #[test]
    fn a_rate_limit_is_not_a_size_error() {
        for message in [
            "eth_getLogs: HTTP error 429 with body: Your app has exceeded its compute units per second capacity",
            "eth_getLogs: server returned an error response: error code 429: Too Many Requests",
            "eth_getLogs: server returned an error response: error code -32005: rate limit exceeded",
            "eth_getLogs: daily request count exceeded, request rate limited",
        ] {
            assert!(!is_too_many_results(message), "{message}");
        }
    }

    #[test]
    fn grows_and_shrinks_within_bounds() {
        let r = RangeSize::new(100, 10, 1000);
        r.succeeded(100, 5, 10_000);
        assert_eq!(r.get(), 200, "sparse: doubles");
        r.succeeded(200, 10_000, 10_000);
        assert_eq!(r.get(), 200, "on target: stays");
        r.succeeded(200, 80_000, 10_000);
        assert_eq!(r.get(), 100, "dense: halves at most");
        r.succeeded(100, 12_500, 10_000);
        assert_eq!(r.get(), 80, "slightly dense: shrinks towards the target");
        assert_eq!(r.failed(200, None), 100);
        assert_eq!(r.failed(100, Some(16)), 16);
        assert_eq!(r.failed(16, Some(1)), 10, "never below the minimum");
        for _ in 0..20 {
            r.succeeded(r.get(), 0, 10_000);
        }
        assert_eq!(r.get(), 1000, "never above the maximum");
    }
}
