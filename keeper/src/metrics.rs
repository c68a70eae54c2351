//! Prometheus metrics, and the state behind `/health` and `/ready` (served by `http.rs`).

use std::sync::{Arc, Mutex};

use beatstream_primitives::{MetricsRegistry, health::Heartbeat};
use prometheus::{Gauge, Histogram, IntCounter, IntGauge};

/// The keeper's metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: MetricsRegistry,
    /// 1 while this keeper is the active one.
    pub leader: IntGauge,
    /// Value of settleable vouchers not yet in a transaction, in token base units.
    pub unsettled_value: IntGauge,
    /// Settleable vouchers not yet in a transaction.
    pub unsettled_vouchers: IntGauge,
    /// Settlement transactions sent and not yet confirmed.
    pub pending_transactions: IntGauge,
    /// Seconds the oldest open settlement transaction has waited for its confirmation (0 when none is open).
    pub oldest_pending: IntGauge,
    /// The keeper account's balance, in wei (what pays for gas).
    pub balance: Gauge,
    /// Signed transactions (first sends, replacements, cancellations).
    pub attempts: IntCounter,
    /// Replacements with raised fees.
    pub bumps: IntCounter,
    /// Transactions sent again because the node had dropped them or a reorg removed them.
    pub rebroadcasts: IntCounter,
    /// Settlements removed by a reorg before they were confirmed.
    pub reorgs: IntCounter,
    /// Nonces freed with a self-transfer (a batch given up, or a gap filled).
    pub cancellations: IntCounter,
    /// Settlement transactions confirmed.
    pub batches_confirmed: IntCounter,
    /// Vouchers settled on-chain by confirmed transactions.
    pub vouchers_settled: IntCounter,
    /// Vouchers left out of a batch because the simulation said the vault would skip them.
    pub vouchers_held: IntCounter,
    /// Tips settled on-chain by confirmed transactions.
    pub tips_settled: IntCounter,
    /// Tips left out of a batch because the simulation said the vault would skip them.
    pub tips_held: IntCounter,
    /// Vouchers per confirmed settlement transaction.
    pub batch_size: Histogram,
    /// Gas used per settled voucher in the last confirmed transaction.
    pub gas_per_voucher: IntGauge,
    /// Seconds from a voucher's storage by the relay to its confirmed settlement.
    pub settlement_latency: Histogram,
    /// Unix time of the last confirmed settlement (alert when it stops moving while value is unsettled).
    pub last_settlement_time: IntGauge,
    /// Failed steps (RPC, database), each retried.
    pub errors: IntCounter,
    /// 1 while settlement is stalled (`/ready` fails its `settlement` check).
    pub stalled: IntGauge,
    /// Beaten by every turn of the leader loop (`/health`).
    pub(crate) heartbeat: Heartbeat,
    state: Arc<Mutex<Health>>,
}

#[derive(Debug, Default)]
struct Health {
    last_error: Option<String>,
    stall: Option<String>,
    /// The last election round: leading or standing by, or why it failed; `None` before the first.
    lease: Option<Result<bool, String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric.
    pub fn new() -> Self {
        let registry = MetricsRegistry::new("beatstream_keeper");
        let gauge = |name: &str, help: &str| registry.gauge(name, help);
        let counter = |name: &str, help: &str| registry.counter(name, help);
        let histogram =
            |name: &str, help: &str, buckets: Vec<f64>| registry.histogram(name, help, buckets);
        Self {
            leader: gauge("leader", "1 while this keeper is the active one"),
            unsettled_value: gauge(
                "unsettled_value",
                "Settleable voucher value not yet in a transaction (token base units)",
            ),
            unsettled_vouchers: gauge(
                "unsettled_vouchers",
                "Settleable vouchers not yet in a transaction",
            ),
            pending_transactions: gauge(
                "pending_transactions",
                "Settlement transactions not yet confirmed",
            ),
            oldest_pending: gauge(
                "oldest_pending_seconds",
                "Seconds the oldest open settlement transaction has waited (0 when none is open)",
            ),
            balance: registry.float_gauge("balance_wei", "The keeper account's balance, in wei"),
            attempts: counter("attempts_total", "Signed transactions, replacements included"),
            bumps: counter("bumps_total", "Replacements with raised fees"),
            rebroadcasts: counter(
                "rebroadcasts_total",
                "Transactions sent again after a drop or a reorg",
            ),
            reorgs: counter("reorgs_total", "Settlements removed by a reorg before confirmation"),
            cancellations: counter("cancellations_total", "Nonces freed with a self-transfer"),
            batches_confirmed: counter(
                "batches_confirmed_total",
                "Settlement transactions confirmed",
            ),
            vouchers_settled: counter(
                "vouchers_settled_total",
                "Vouchers settled by confirmed transactions",
            ),
            vouchers_held: counter(
                "vouchers_held_total",
                "Vouchers left out because the simulation said the vault would skip them",
            ),
            tips_settled: counter("tips_settled_total", "Tips settled by confirmed transactions"),
            tips_held: counter(
                "tips_held_total",
                "Tips left out because the simulation said the vault would skip them",
            ),
            batch_size: histogram(
                "batch_size",
                "Vouchers per confirmed settlement transaction",
                vec![1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 400.0],
            ),
            gas_per_voucher: gauge(
                "gas_per_voucher",
                "Gas per settled voucher in the last confirmed transaction",
            ),
            settlement_latency: histogram(
                "settlement_latency_seconds",
                "Seconds from a voucher's storage to its confirmed settlement",
                vec![1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0],
            ),
            last_settlement_time: gauge(
                "last_settlement_timestamp_seconds",
                "Unix time of the last confirmed settlement",
            ),
            errors: counter("errors_total", "Failed steps, each retried"),
            stalled: gauge("stalled", "1 while settlement is stalled (see /ready)"),
            heartbeat: Heartbeat::new(),
            state: Arc::new(Mutex::new(Health::default())),
            registry,
        }
    }

    /// The error of the last failed step, until a step succeeds again.
    pub fn last_error(&self) -> Option<String> {
        self.state.lock().expect("not poisoned").last_error.clone()
    }

    pub(crate) fn set_last_error(&self, error: Option<String>) {
        self.state.lock().expect("not poisoned").last_error = error;
    }

    /// Why settlement is stalled, if it is.
    pub fn stall(&self) -> Option<String> {
        self.state.lock().expect("not poisoned").stall.clone()
    }

    pub(crate) fn set_stall(&self, stall: Option<String>) {
        self.stalled.set(i64::from(stall.is_some()));
        self.state.lock().expect("not poisoned").stall = stall;
    }

    /// The last election round: `Ok(true)` leading, `Ok(false)` standing by while another keeper leads, or why
    /// it failed; `None` before the first round.
    pub fn lease(&self) -> Option<Result<bool, String>> {
        self.state.lock().expect("not poisoned").lease.clone()
    }

    pub(crate) fn set_lease(&self, lease: Result<bool, String>) {
        self.leader.set(i64::from(lease == Ok(true)));
        self.state.lock().expect("not poisoned").lease = Some(lease);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.registry.render()
    }

    /// The name of every sample the keeper exports (for checks that alert rules name real metrics).
    pub fn sample_names(&self) -> Vec<String> {
        self.registry.sample_names()
    }
}
