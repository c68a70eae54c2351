//! Asking again after "not now": rate limits and unavailable endpoints, with exponential backoff and jitter, the
//! provider's own pause when it names one, a bounded number of times. One warning per episode, not per retry.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use alloy::{
    rpc::json_rpc::{RequestPacket, ResponsePacket},
    transports::{TransportError, TransportFut},
};
use tower::{Layer, Service};
use tracing::{debug, info, warn};

use super::{
    classify::{Outcome, classify},
    failover::describe,
};

/// How often and how long to wait.
#[derive(Clone, Copy, Debug)]
pub(super) struct Backoff {
    /// Retries after the first attempt.
    pub(super) retries: u32,
    /// The first pause; it doubles per retry.
    pub(super) initial: Duration,
    /// The longest pause, the provider's own included.
    pub(super) max: Duration,
}

impl Backoff {
    /// The pause before retry number `retry` (1-based): the provider's `hint` plus up to a tenth more (never less
    /// than it asked), else the doubling backoff with "equal jitter" (between half of it and all of it).
    pub(super) fn pause(&self, retry: u32, hint: Option<Duration>, random: u64) -> Duration {
        let spread = |d: Duration| d.mul_f64((random % 1_000) as f64 / 1_000.0);
        match hint {
            Some(hint) => {
                let hint = hint.min(self.max);
                hint + spread(hint / 10).min(Duration::from_secs(1))
            }
            None => {
                let doubled = self.initial.saturating_mul(1 << (retry - 1).min(20)).min(self.max);
                doubled / 2 + spread(doubled / 2)
            }
        }
    }
}

/// Wraps a transport with [`RetryService`].
#[derive(Clone, Debug)]
pub(super) struct RetryLayer {
    backoff: Backoff,
}

impl RetryLayer {
    pub(super) fn new(backoff: Backoff) -> Self {
        Self { backoff }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = RetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService { inner, backoff: self.backoff, troubled: Arc::new(AtomicBool::new(false)) }
    }
}

/// Retries what [`Outcome::is_retryable`] says may succeed later; hands back everything else, and the last answer
/// once the retries are spent.
#[derive(Clone, Debug)]
pub(super) struct RetryService<S> {
    inner: S,
    backoff: Backoff,
    /// Whether requests are being retried now: the first retry warns, the first success after says so.
    troubled: Arc<AtomicBool>,
}

impl<S> Service<RequestPacket> for RetryService<S>
where
    S: Service<
            RequestPacket,
            Response = ResponsePacket,
            Error = TransportError,
            Future = TransportFut<'static>,
        > + Clone
        + Send
        + 'static,
{
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: RequestPacket) -> Self::Future {
        let mut inner = self.inner.clone();
        let (backoff, troubled) = (self.backoff, self.troubled.clone());
        Box::pin(async move {
            let method = req.method_names().next().unwrap_or_default().to_owned();
            let mut retry = 0;
            loop {
                let result = inner.call(req.clone()).await;
                let outcome = classify(&result);
                if !outcome.is_retryable() {
                    if outcome == Outcome::Answered && troubled.swap(false, Ordering::Relaxed) {
                        info!(target: "beatstream::rpc", %method, "RPC provider answering again");
                    }
                    return result;
                }
                retry += 1;
                if retry > backoff.retries {
                    warn!(target: "beatstream::rpc", %method, retries = backoff.retries, error = %describe(&result), "RPC request still failing; giving up on it");
                    return result;
                }
                let pause = backoff.pause(retry, outcome.hint(), random());
                let error = describe(&result);
                let limited = matches!(outcome, Outcome::RateLimited(_));
                if !troubled.swap(true, Ordering::Relaxed) {
                    warn!(target: "beatstream::rpc", %method, rate_limited = limited, wait_ms = pause.as_millis() as u64, %error, "RPC provider rate-limiting or unavailable; retrying with backoff");
                } else {
                    debug!(target: "beatstream::rpc", %method, retry, rate_limited = limited, wait_ms = pause.as_millis() as u64, %error, "retrying RPC request");
                }
                tokio::time::sleep(pause).await;
            }
        })
    }
}

/// A random number for jitter (std's hasher keys are random per process and per `RandomState`).
fn random() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff =
        Backoff { retries: 8, initial: Duration::from_millis(250), max: Duration::from_secs(30) };

    #[test]
    fn pauses_double_with_jitter_up_to_the_maximum() {
        for random in [0, 499, 999] {
            for retry in 1..=12 {
                let full =
                    (Duration::from_millis(250) * (1 << (retry - 1))).min(Duration::from_secs(30));
                let pause = BACKOFF.pause(retry, None, random);
                assert!(pause >= full / 2 && pause <= full, "retry {retry}: {pause:?} of {full:?}");
            }
        }
        assert_ne!(BACKOFF.pause(3, None, 0), BACKOFF.pause(3, None, 999), "jittered");
    }

    #[test]
    fn the_providers_pause_is_honoured_never_shortened() {
        for random in [0, 999] {
            let pause = BACKOFF.pause(1, Some(Duration::from_secs(2)), random);
            assert!(
                pause >= Duration::from_secs(2) && pause <= Duration::from_millis(2_200),
                "{pause:?}"
            );
        }
        assert!(
            BACKOFF.pause(1, Some(Duration::from_secs(3_600)), 0) == Duration::from_secs(30),
            "capped"
        );
    }
}
