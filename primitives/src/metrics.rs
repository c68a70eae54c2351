//! The Prometheus registry set-up every service shares: one registry per service under its own prefix, metrics
//! registered once, rendered as text for `/metrics`, each with `beatstream_build_info` beside them.

use std::sync::{Arc, Mutex, OnceLock};

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Name of the build-info metric every service exports (always 1; the build is in its labels).
pub const BUILD_INFO: &str = "beatstream_build_info";

/// Value of the `git_sha` label when the binary does not say which commit it was built from.
pub const UNKNOWN_GIT_SHA: &str = "unknown";

static GIT_SHA: OnceLock<&'static str> = OnceLock::new();

/// Records the commit this program was built from, for the `git_sha` label of [`BUILD_INFO`]. The `beatstream`
/// binary calls it once at start, before any service makes its registry; a later call is ignored.
pub fn set_git_sha(sha: &'static str) {
    let _ = GIT_SHA.set(sha);
}

/// The commit recorded by [`set_git_sha`], or [`UNKNOWN_GIT_SHA`].
pub fn git_sha() -> &'static str {
    GIT_SHA.get().copied().unwrap_or(UNKNOWN_GIT_SHA)
}

/// A service's own Prometheus registry, whose metric names all start with `<prefix>_`.
///
/// The constructors panic on an invalid or duplicate name: names are static, so that is a bug found by the
/// service's first test.
#[derive(Clone, Debug)]
pub struct MetricsRegistry {
    registry: Registry,
    /// Unprefixed: holds [`BUILD_INFO`] only.
    build: Registry,
    prefix: String,
    /// Every sample name this registry can export, for checks that alert rules name real metrics.
    names: Arc<Mutex<Vec<String>>>,
}

impl MetricsRegistry {
    /// An empty registry whose metrics are named `<prefix>_<name>`, e.g. `beatstream_relay`, plus [`BUILD_INFO`]
    /// with the service named by the prefix (`relay`), this crate's version and the commit ([`git_sha`]).
    pub fn new(prefix: &str) -> Self {
        let registry = Registry::new_custom(Some(prefix.into()), None).expect("valid prefix");
        let build = Registry::new();
        let service = prefix.strip_prefix("beatstream_").unwrap_or(prefix);
        let info = IntGauge::with_opts(
            Opts::new(BUILD_INFO, "The build: version, commit and service (always 1)")
                .const_label("service", service)
                .const_label("version", env!("CARGO_PKG_VERSION"))
                .const_label("git_sha", git_sha()),
        )
        .expect("valid metric");
        info.set(1);
        build.register(Box::new(info)).expect("unique metric");
        let names = Arc::new(Mutex::new(vec![BUILD_INFO.to_owned()]));
        Self { registry, build, prefix: prefix.to_owned(), names }
    }

    /// Registers and returns an integer gauge.
    pub fn gauge(&self, name: &str, help: &str) -> IntGauge {
        let g = IntGauge::new(name, help).expect("valid metric");
        self.register(Box::new(g.clone()), name, &[""]);
        g
    }

    /// Registers and returns a floating-point gauge (for values beyond `i64`, such as balances in wei).
    pub fn float_gauge(&self, name: &str, help: &str) -> Gauge {
        let g = Gauge::new(name, help).expect("valid metric");
        self.register(Box::new(g.clone()), name, &[""]);
        g
    }

    /// Registers and returns an integer counter.
    pub fn counter(&self, name: &str, help: &str) -> IntCounter {
        let c = IntCounter::new(name, help).expect("valid metric");
        self.register(Box::new(c.clone()), name, &[""]);
        c
    }

    /// Registers and returns an integer counter with the given labels.
    pub fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
        self.register(Box::new(c.clone()), name, &[""]);
        c
    }

    /// Registers and returns a histogram with the given bucket bounds.
    pub fn histogram(&self, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
        let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
            .expect("valid metric");
        self.register(Box::new(h.clone()), name, &["_bucket", "_sum", "_count"]);
        h
    }

    fn register(
        &self,
        metric: Box<dyn prometheus::core::Collector>,
        name: &str,
        suffixes: &[&str],
    ) {
        self.registry.register(metric).expect("unique metric");
        let mut names = self.names.lock().expect("not poisoned");
        names.extend(suffixes.iter().map(|s| format!("{}_{name}{s}", self.prefix)));
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut families = self.registry.gather();
        families.extend(self.build.gather());
        TextEncoder::new().encode_to_string(&families).unwrap_or_default()
    }

    /// The name of every sample this registry can export (a histogram's `_bucket`, `_sum` and `_count`), whether
    /// or not it has a value yet: what alert rules and dashboards may refer to.
    pub fn sample_names(&self) -> Vec<String> {
        self.names.lock().expect("not poisoned").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_under_the_prefix() {
        let registry = MetricsRegistry::new("beatstream_test");
        registry.gauge("open", "Open things").set(3);
        registry.float_gauge("balance", "A balance").set(2.5e19);
        registry.counter("done_total", "Things done").inc();
        registry
            .counter_vec("errors_total", "Errors by code", &["code", "kind"])
            .with_label_values(&["x", "y"])
            .inc();
        registry.histogram("seconds", "Durations", vec![0.1, 1.0]).observe(0.5);
        let text = registry.render();
        for line in [
            "beatstream_test_open 3",
            "beatstream_test_balance 25000000000000000000",
            "beatstream_test_done_total 1",
            "beatstream_test_errors_total{code=\"x\",kind=\"y\"} 1",
            "beatstream_test_seconds_bucket{le=\"1\"} 1",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
    }

    #[test]
    fn every_registry_exports_its_build() {
        let text = MetricsRegistry::new("beatstream_test").render();
        let line = format!(
            "beatstream_build_info{{git_sha=\"{}\",service=\"test\",version=\"{}\"}} 1",
            git_sha(),
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&line), "{line:?} missing from\n{text}");
    }

    #[test]
    fn sample_names_include_metrics_without_values() {
        let registry = MetricsRegistry::new("beatstream_test");
        registry.counter_vec("errors_total", "Errors by code", &["code"]);
        registry.histogram("seconds", "Durations", vec![1.0]);
        assert_eq!(
            registry.sample_names(),
            [
                "beatstream_build_info",
                "beatstream_test_errors_total",
                "beatstream_test_seconds_bucket",
                "beatstream_test_seconds_sum",
                "beatstream_test_seconds_count",
            ]
        );
        // A vector with no labelled child yet renders nothing: the names come from registration, not rendering.
        assert!(!registry.render().contains("beatstream_test_errors_total"));
    }

    #[test]
    #[should_panic(expected = "unique metric")]
    fn a_name_registered_twice_panics() {
        let registry = MetricsRegistry::new("beatstream_test");
        registry.counter("twice", "Once");
        registry.counter("twice", "Twice");
    }
}
