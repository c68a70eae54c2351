//! Prometheus metrics of the API, served at `/metrics`: GraphQL requests by operation type and outcome, their
//! latency, errors by code, and the subscriptions open now. `schema/request.rs` records them.

use beatstream_primitives::MetricsRegistry;
use prometheus::{Histogram, IntCounterVec, IntGauge};

/// The API's metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: MetricsRegistry,
    /// Requests answered, by `operation` (`query`, `mutation`, `subscription`, or `unknown` when the document did
    /// not parse) and `outcome` (`ok`, `error`). A subscription counts once it ends.
    pub(crate) requests: IntCounterVec,
    /// Seconds to answer a query or mutation (subscriptions, which last, are left out).
    pub(crate) latency: Histogram,
    /// Errors in responses, by `extensions.code`.
    pub(crate) errors: IntCounterVec,
    /// Subscriptions open now.
    pub(crate) subscriptions: IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric.
    pub fn new() -> Self {
        let registry = MetricsRegistry::new("beatstream_api");
        Self {
            requests: registry.counter_vec(
                "requests_total",
                "GraphQL requests answered, by operation type and outcome",
                &["operation", "outcome"],
            ),
            latency: registry.histogram(
                "request_duration_seconds",
                "Seconds to answer a GraphQL query or mutation",
                vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
            ),
            errors: registry.counter_vec(
                "errors_total",
                "Errors in GraphQL responses, by extensions.code",
                &["code"],
            ),
            subscriptions: registry.gauge("subscriptions", "GraphQL subscriptions open now"),
            registry,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.registry.render()
    }

    /// The name of every sample the API exports (for checks that alert rules name real metrics).
    pub fn sample_names(&self) -> Vec<String> {
        self.registry.sample_names()
    }
}
