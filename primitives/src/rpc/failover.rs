//! Several endpoints as one: each request goes to the most preferred endpoint that is not cooling down, and on to
//! the next when that one fails; a failed endpoint is tried first again once its cooldown is over. An endpoint that
//! named a pause (`Retry-After`, "try again in 2s") is not asked again before it is over, by any request.

use std::{
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use alloy::{
    rpc::json_rpc::{RequestPacket, ResponsePacket},
    transports::{BoxTransport, TransportError, TransportErrorKind, TransportFut, TransportResult},
};
use tokio::time::Instant;
use tower::Service;
use tracing::{info, warn};

use super::{
    classify::{Outcome, classify, no_endpoint},
    http::EndpointFailure,
};

/// One endpoint and how it has been doing.
#[derive(Debug)]
pub(super) struct Endpoint {
    label: String,
    transport: BoxTransport,
    health: Mutex<Health>,
}

#[derive(Debug, Default)]
struct Health {
    /// Tried after the others until then, after a failure (only with another endpoint to go to).
    down_until: Option<Instant>,
    /// Not asked at all before then: the pause it named.
    not_before: Option<Instant>,
}

impl Endpoint {
    /// `transport`, shown in logs as `label`.
    pub(super) fn new(label: String, transport: BoxTransport) -> Self {
        Self { label, transport, health: Mutex::default() }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().expect("not poisoned")
    }
}

/// The endpoints, most preferred first.
#[derive(Clone, Debug)]
pub(super) struct Failover {
    endpoints: Arc<[Endpoint]>,
    timeout: Duration,
    cooldown: Duration,
}

impl Failover {
    /// `endpoints` in order of preference, each attempt bounded by `timeout`, a failed one passed over for
    /// `cooldown` (or its Retry-After, if longer).
    pub(super) fn new(endpoints: Vec<Endpoint>, timeout: Duration, cooldown: Duration) -> Self {
        Self { endpoints: endpoints.into(), timeout, cooldown }
    }

    /// The order to try the endpoints in: those not cooling down first, then the rest, each group as configured;
    /// without those still in the pause they named.
    fn order(&self, now: Instant) -> Vec<usize> {
        let mut ready = Vec::new();
        let mut cooling = Vec::new();
        for (index, endpoint) in self.endpoints.iter().enumerate() {
            let health = endpoint.health();
            if health.not_before.is_some_and(|t| t > now) {
                continue;
            }
            if health.down_until.is_some_and(|t| t > now) {
                cooling.push(index);
            } else {
                ready.push(index);
            }
        }
        ready.extend(cooling);
        ready
    }

    async fn request(self, req: RequestPacket) -> TransportResult<ResponsePacket> {
        let now = Instant::now();
        let mut failures = Vec::new();
        for index in self.order(now) {
            let endpoint = &self.endpoints[index];
            let mut transport = endpoint.transport.clone();
            let result = match tokio::time::timeout(self.timeout, transport.call(req.clone())).await
            {
                Ok(result) => result,
                Err(_) => Err(TransportErrorKind::custom(EndpointFailure::TimedOut {
                    endpoint: endpoint.label.clone(),
                    after: self.timeout,
                })),
            };
            let outcome = classify(&result);
            if outcome == Outcome::Answered {
                self.recovered(endpoint);
                return result;
            }
            // A method this endpoint does not serve says nothing of its health: another endpoint may serve it.
            if outcome.is_endpoint_failure() {
                self.failed(endpoint, outcome, &result);
            }
            failures.push((outcome.hint(), result));
        }
        // Every endpoint failed: the answer that asked for the longest pause (so the retry waits it out), else the
        // most preferred one's; with none asked, the pause until one may be asked again.
        if let Some(longest) = failures.iter().map(|(hint, _)| *hint).max().flatten() {
            let at = failures.iter().position(|(hint, _)| *hint == Some(longest));
            return failures.swap_remove(at.expect("found above")).1;
        }
        if !failures.is_empty() {
            return failures.swap_remove(0).1;
        }
        self.waiting(now)
    }

    /// The error for a request no endpoint may take yet: each is in the pause it named.
    fn waiting(&self, now: Instant) -> TransportResult<ResponsePacket> {
        let soonest = self
            .endpoints
            .iter()
            .filter_map(|e| e.health().not_before.map(|t| (t.saturating_duration_since(now), e)))
            .min_by_key(|(remaining, _)| *remaining);
        match soonest {
            Some((remaining, endpoint)) => {
                Err(TransportErrorKind::custom(EndpointFailure::Waiting {
                    endpoint: endpoint.label.clone(),
                    remaining,
                }))
            }
            None => Err(no_endpoint()),
        }
    }

    fn failed(
        &self,
        endpoint: &Endpoint,
        outcome: Outcome,
        result: &TransportResult<ResponsePacket>,
    ) {
        let now = Instant::now();
        let mut health = endpoint.health();
        if let Some(hint) = outcome.hint() {
            health.not_before = Some(now + hint);
        }
        if self.endpoints.len() == 1 {
            return;
        }
        let pause = outcome.hint().map_or(self.cooldown, |hint| hint.max(self.cooldown));
        if health.down_until.is_none() {
            let error = describe(result);
            warn!(target: "beatstream::rpc", endpoint = %endpoint.label, %error, cooldown_secs = pause.as_secs(), "RPC endpoint failing; using the next one meanwhile");
        }
        health.down_until = Some(now + pause);
    }

    fn recovered(&self, endpoint: &Endpoint) {
        if endpoint.health().down_until.take().is_some() {
            info!(target: "beatstream::rpc", endpoint = %endpoint.label, "RPC endpoint answering again");
        }
    }
}

/// A failed request in words, for a log line.
pub(super) fn describe(result: &TransportResult<ResponsePacket>) -> String {
    match result {
        Ok(packet) => packet
            .as_error()
            .map_or_else(String::new, |e| format!("error code {}: {}", e.code, e.message)),
        Err(e) => e.to_string(),
    }
}

impl Service<RequestPacket> for Failover {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use alloy::rpc::json_rpc::{Id, Request, Response, ResponsePayload};

    use super::*;

    /// A transport answering with `answer` and counting its calls.
    fn endpoint(
        label: &str,
        calls: Arc<AtomicUsize>,
        answer: fn() -> TransportResult<ResponsePacket>,
    ) -> Endpoint {
        let service = tower::service_fn(move |_: RequestPacket| {
            calls.fetch_add(1, Ordering::SeqCst);
            let fut: TransportFut<'static> = Box::pin(async move { answer() });
            fut
        });
        Endpoint::new(label.into(), BoxTransport::new(service))
    }

    fn ok() -> TransportResult<ResponsePacket> {
        let payload = ResponsePayload::Success(serde_json::value::to_raw_value(&"0x1").unwrap());
        Ok(ResponsePacket::Single(Response { id: Id::Number(1), payload }))
    }

    fn unavailable() -> TransportResult<ResponsePacket> {
        Err(TransportErrorKind::http_error(503, String::new()))
    }

    fn request() -> RequestPacket {
        RequestPacket::Single(Request::new("eth_chainId", Id::Number(1), ()).serialize().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_endpoint_is_passed_over_then_tried_first_again() {
        let (first, second) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let failover = Failover::new(
            vec![endpoint("a", first.clone(), unavailable), endpoint("b", second.clone(), ok)],
            Duration::from_secs(1),
            Duration::from_secs(30),
        );
        assert!(failover.clone().request(request()).await.is_ok());
        assert_eq!((first.load(Ordering::SeqCst), second.load(Ordering::SeqCst)), (1, 1));
        // Cooling down: the second is asked alone.
        assert!(failover.clone().request(request()).await.is_ok());
        assert_eq!((first.load(Ordering::SeqCst), second.load(Ordering::SeqCst)), (1, 2));
        // After the cooldown, the first is tried first again.
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(failover.clone().request(request()).await.is_ok());
        assert_eq!((first.load(Ordering::SeqCst), second.load(Ordering::SeqCst)), (2, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_endpoint_fails_the_first_ones_error_is_returned() {
        let calls = Arc::new(AtomicUsize::new(0));
        let failover = Failover::new(
            vec![
                endpoint("a", calls.clone(), unavailable),
                endpoint("b", calls.clone(), || {
                    Err(TransportErrorKind::http_error(429, String::new()))
                }),
            ],
            Duration::from_secs(1),
            Duration::from_secs(30),
        );
        let err = failover.clone().request(request()).await.unwrap_err();
        assert!(err.to_string().contains("503"), "{err}");
        // Both cooling down: both are still asked, in order.
        let err = failover.request(request()).await.unwrap_err();
        assert!(err.to_string().contains("503"), "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn an_endpoint_is_not_asked_again_before_the_pause_it_named() {
        let (limited, overloaded) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let failover = Failover::new(
            vec![
                endpoint("limited", limited.clone(), || {
                    Err(TransportErrorKind::http_error_with_retry_after(
                        429,
                        String::new(),
                        Some(Duration::from_secs(2)),
                    ))
                }),
                endpoint("overloaded", overloaded.clone(), unavailable),
            ],
            Duration::from_secs(1),
            Duration::from_secs(30),
        );
        // Both fail: the answer with the pause is the one returned, so the retry waits it out.
        let err = failover.clone().request(request()).await.unwrap_err();
        assert!(err.to_string().contains("429"), "{err}");
        // Within the pause only the other endpoint is asked.
        failover.clone().request(request()).await.unwrap_err();
        assert_eq!((limited.load(Ordering::SeqCst), overloaded.load(Ordering::SeqCst)), (1, 2));
        tokio::time::advance(Duration::from_millis(2_001)).await;
        failover.clone().request(request()).await.unwrap_err();
        assert_eq!((limited.load(Ordering::SeqCst), overloaded.load(Ordering::SeqCst)), (2, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_single_endpoint_in_its_pause_says_how_long_is_left() {
        let calls = Arc::new(AtomicUsize::new(0));
        let failover = Failover::new(
            vec![endpoint("limited", calls.clone(), || {
                Err(TransportErrorKind::http_error_with_retry_after(
                    429,
                    String::new(),
                    Some(Duration::from_secs(2)),
                ))
            })],
            Duration::from_secs(1),
            Duration::from_secs(30),
        );
        failover.clone().request(request()).await.unwrap_err();
        tokio::time::advance(Duration::from_millis(500)).await;
        let waiting = failover.clone().request(request()).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "asked within its pause");
        assert_eq!(classify(&waiting), Outcome::RateLimited(Some(Duration::from_millis(1_500))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_endpoint_times_out_and_the_next_answers() {
        let calls = Arc::new(AtomicUsize::new(0));
        let hung = Endpoint::new(
            "hung".into(),
            BoxTransport::new(tower::service_fn(|_: RequestPacket| {
                let fut: TransportFut<'static> = Box::pin(std::future::pending());
                fut
            })),
        );
        let failover = Failover::new(
            vec![hung, endpoint("b", calls.clone(), ok)],
            Duration::from_secs(1),
            Duration::from_secs(30),
        );
        assert!(failover.request(request()).await.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
