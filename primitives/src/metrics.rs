//! The Prometheus registry set-up every service shares: one registry per service under its own prefix, metrics
//! registered once, rendered as text for `/metrics`.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// A service's own Prometheus registry, whose metric names all start with `<prefix>_`.
///
/// The constructors panic on an invalid or duplicate name: names are static, so that is a bug found by the
/// service's first test.
#[derive(Clone, Debug)]
pub struct MetricsRegistry {
    registry: Registry,
}

impl MetricsRegistry {
    /// An empty registry whose metrics are named `<prefix>_<name>`, e.g. `beatstream_relay`.
    pub fn new(prefix: &str) -> Self {
        let registry = Registry::new_custom(Some(prefix.into()), None).expect("valid prefix");
        Self { registry }
    }

    /// Registers and returns an integer gauge.
    pub fn gauge(&self, name: &str, help: &str) -> IntGauge {
        let g = IntGauge::new(name, help).expect("valid metric");
        self.registry.register(Box::new(g.clone())).expect("unique metric");
        g
    }

    /// Registers and returns an integer counter.
    pub fn counter(&self, name: &str, help: &str) -> IntCounter {
        let c = IntCounter::new(name, help).expect("valid metric");
        self.registry.register(Box::new(c.clone())).expect("unique metric");
        c
    }

    /// Registers and returns an integer counter with one label.
    pub fn counter_vec(&self, name: &str, help: &str, label: &str) -> IntCounterVec {
        let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
        self.registry.register(Box::new(c.clone())).expect("unique metric");
        c
    }

    /// Registers and returns a histogram with the given bucket bounds.
    pub fn histogram(&self, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
        let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
            .expect("valid metric");
        self.registry.register(Box::new(h.clone())).expect("unique metric");
        h
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        TextEncoder::new().encode_to_string(&self.registry.gather()).unwrap_or_default()
    }

    /// The underlying registry, to register a metric of another type.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_under_the_prefix() {
        let registry = MetricsRegistry::new("beatstream_test");
        registry.gauge("open", "Open things").set(3);
        registry.counter("done_total", "Things done").inc();
        registry
            .counter_vec("errors_total", "Errors by code", "code")
            .with_label_values(&["x"])
            .inc();
        registry.histogram("seconds", "Durations", vec![0.1, 1.0]).observe(0.5);
        let text = registry.render();
        for line in [
            "beatstream_test_open 3",
            "beatstream_test_done_total 1",
            "beatstream_test_errors_total{code=\"x\"} 1",
            "beatstream_test_seconds_bucket{le=\"1\"} 1",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
    }

    #[test]
    #[should_panic(expected = "unique metric")]
    fn a_name_registered_twice_panics() {
        let registry = MetricsRegistry::new("beatstream_test");
        registry.counter("twice", "Once");
        registry.counter("twice", "Twice");
    }
}
