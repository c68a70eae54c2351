//! Prometheus metrics and the health state behind `/health`, `/ready` and `/metrics`.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use beatstream_primitives::{MetricsRegistry, health::Heartbeat};
use prometheus::{IntCounter, IntGauge};

/// The indexer's metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: MetricsRegistry,
    /// Latest block the RPC reported.
    pub head: IntGauge,
    /// Last block written.
    pub indexed: IntGauge,
    /// `head - indexed`.
    pub behind: IntGauge,
    /// Events written (rate: events/s).
    pub events: IntCounter,
    /// Batches committed.
    pub batches: IntCounter,
    /// Failed RPC requests.
    pub rpc_errors: IntCounter,
    /// Logs that could not be decoded.
    pub decode_errors: IntCounter,
    /// Reorgs rolled back.
    pub reorgs: IntCounter,
    /// Events that did not fit the mirrored state.
    pub inconsistencies: IntCounter,
    /// Beaten by every step of the loop and every batch committed (`/health`).
    pub(crate) heartbeat: Heartbeat,
    ready: Arc<AtomicBool>,
    last_error: Arc<Mutex<Option<String>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric.
    pub fn new() -> Self {
        let registry = MetricsRegistry::new("beatstream_indexer");
        let gauge = |name: &str, help: &str| registry.gauge(name, help);
        let counter = |name: &str, help: &str| registry.counter(name, help);
        Self {
            head: gauge("head_block", "Latest block number the RPC reported"),
            indexed: gauge("indexed_block", "Last block whose logs are written"),
            behind: gauge("blocks_behind", "Head minus indexed block"),
            events: counter("events_total", "Events written"),
            batches: counter("batches_total", "Batches committed"),
            rpc_errors: counter("rpc_errors_total", "Failed or timed-out RPC requests"),
            decode_errors: counter(
                "decode_errors_total",
                "Logs of mirrored contracts that did not decode",
            ),
            reorgs: counter("reorgs_total", "Reorgs rolled back"),
            inconsistencies: counter(
                "inconsistencies_total",
                "Events that did not fit the mirrored state",
            ),
            heartbeat: Heartbeat::new(),
            ready: Arc::new(AtomicBool::new(false)),
            last_error: Arc::new(Mutex::new(None)),
            registry,
        }
    }

    /// Whether the indexer has caught up with the head (minus confirmations) since it started.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// The error of the last failed step, until a step succeeds again.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().expect("not poisoned").clone()
    }

    pub(crate) fn set_last_error(&self, error: Option<String>) {
        *self.last_error.lock().expect("not poisoned") = error;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.registry.render()
    }

    /// The name of every sample the indexer exports (for checks that alert rules name real metrics).
    pub fn sample_names(&self) -> Vec<String> {
        self.registry.sample_names()
    }
}
