//! Prometheus metrics of one relay, served at `/metrics`.

use beatstream_primitives::MetricsRegistry;
use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge};

/// The relay's metrics, registered in their own registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: MetricsRegistry,
    /// Open WebSocket connections.
    pub connections: IntGauge,
    /// Sessions playing (not paused, not closed).
    pub sessions_live: IntGauge,
    /// Sessions paused for vouchers behind.
    pub sessions_paused: IntGauge,
    /// Vouchers stored and acknowledged.
    pub vouchers_acked: IntCounter,
    /// Tips stored and acknowledged.
    pub tips_acked: IntCounter,
    /// Time from receiving a voucher frame to sending its ack.
    pub ack_latency: Histogram,
    /// `error` frames sent, by code.
    pub errors: IntCounterVec,
    /// Connections closed for abuse, idle time or shutdown, by reason.
    pub closes: IntCounterVec,
    /// Duration of one group commit.
    pub commit_seconds: Histogram,
    /// Operations (vouchers and session changes) in one group commit.
    pub commit_ops: Histogram,
    /// Group commits that failed and were reported to their clients.
    pub commit_failures: IntCounter,
    /// Yellow states the node accepted, by intent (`create`, `deposit`, `operate`, `close`).
    pub yellow_submitted: IntCounterVec,
    /// Yellow submissions that failed, by kind (`unavailable`, `version`, `refused`).
    pub yellow_submit_errors: IntCounterVec,
    /// Stored Yellow states the node has not accepted yet.
    pub yellow_backlog: IntGauge,
    /// Time from storing a Yellow state to the node accepting it.
    pub yellow_submit_lag: Histogram,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = MetricsRegistry::new("beatstream_relay");
        let gauge = |name: &str, help: &str| registry.gauge(name, help);
        let counter = |name: &str, help: &str| registry.counter(name, help);
        let counter_vec =
            |name: &str, help: &str, label: &str| registry.counter_vec(name, help, &[label]);
        let histogram =
            |name: &str, help: &str, buckets: Vec<f64>| registry.histogram(name, help, buckets);
        let latency = vec![0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0];
        Self {
            connections: gauge("connections", "Open WebSocket connections."),
            sessions_live: gauge("sessions_live", "Sessions playing."),
            sessions_paused: gauge(
                "sessions_paused",
                "Sessions paused because vouchers fell behind.",
            ),
            vouchers_acked: counter("vouchers_acked_total", "Vouchers stored and acknowledged."),
            tips_acked: counter("tips_acked_total", "Tips stored and acknowledged."),
            ack_latency: histogram(
                "ack_latency_seconds",
                "Time from receiving a voucher to sending its ack.",
                latency.clone(),
            ),
            errors: counter_vec("errors_total", "Error frames sent, by code.", "code"),
            closes: counter_vec(
                "closes_total",
                "Connections closed by the relay, by reason.",
                "reason",
            ),
            commit_seconds: histogram("commit_seconds", "Duration of one group commit.", latency),
            commit_ops: histogram(
                "commit_ops",
                "Vouchers and session changes in one group commit.",
                vec![1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0],
            ),
            commit_failures: counter("commit_failures_total", "Group commits that failed."),
            yellow_submitted: counter_vec(
                "yellow_submitted_total",
                "Yellow states the node accepted, by intent.",
                "intent",
            ),
            yellow_submit_errors: counter_vec(
                "yellow_submit_errors_total",
                "Yellow submissions that failed, by kind.",
                "kind",
            ),
            yellow_backlog: gauge(
                "yellow_backlog",
                "Stored Yellow states the node has not accepted yet.",
            ),
            yellow_submit_lag: histogram(
                "yellow_submit_lag_seconds",
                "Time from storing a Yellow state to the node accepting it.",
                vec![0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0],
            ),
            registry,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.registry.render()
    }

    /// The name of every sample the relay exports (for checks that alert rules name real metrics).
    pub fn sample_names(&self) -> Vec<String> {
        self.registry.sample_names()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
