//! What `/health` and `/ready` answer, the same way in every service.
//!
//! `/health` is liveness: cheap, it asks only whether the service's loop still turns ([`Heartbeat`]), so a
//! supervisor restarts a process that is stuck and leaves alone one that is merely waiting on a dependency.
//! `/ready` runs named [`Check`]s at request time (Postgres, the RPC endpoint, the service's own state), each under
//! [`CHECK_TIMEOUT`], and answers 200 when all pass, else 503 naming each that failed ([`Readiness`]).

use std::{
    fmt::Display,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// Timeout of one readiness check: a dependency slower than this is as good as down to a probe.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a service's loop may go without a beat before `/health` calls it stuck. Generous on purpose: a
/// liveness failure restarts the process, and a loop that is slow (a long backfill batch, an RPC request near its
/// timeout, a backoff) is not stuck.
pub const LIVENESS_WINDOW: Duration = Duration::from_secs(300);

/// The outcome of one readiness check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    name: &'static str,
    outcome: Result<Option<String>, String>,
}

impl Check {
    /// A check that passed.
    pub fn pass(name: &'static str) -> Self {
        Self { name, outcome: Ok(None) }
    }

    /// A check that passed, with what it found (`"leader"`, `"2 blocks behind"`).
    pub fn pass_with(name: &'static str, detail: impl Into<String>) -> Self {
        Self { name, outcome: Ok(Some(detail.into())) }
    }

    /// A check that failed, and why.
    pub fn fail(name: &'static str, error: impl Into<String>) -> Self {
        Self { name, outcome: Err(error.into()) }
    }

    /// Runs `probe` under [`CHECK_TIMEOUT`]: it passes if the probe returns `Ok` in time.
    pub async fn run<T, E: Display>(
        name: &'static str,
        probe: impl Future<Output = Result<T, E>>,
    ) -> Self {
        Self::run_within(name, CHECK_TIMEOUT, probe).await
    }

    /// [`Check::run`] with another timeout.
    pub async fn run_within<T, E: Display>(
        name: &'static str,
        timeout: Duration,
        probe: impl Future<Output = Result<T, E>>,
    ) -> Self {
        match tokio::time::timeout(timeout, probe).await {
            Ok(Ok(_)) => Self::pass(name),
            Ok(Err(e)) => Self::fail(name, e.to_string()),
            Err(_) => Self::fail(name, format!("no answer within {} ms", timeout.as_millis())),
        }
    }

    /// The check's name, as `/ready` shows it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// The checks of one `/ready` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    checks: Vec<Check>,
}

impl Readiness {
    /// The outcome of these checks.
    pub fn new(checks: Vec<Check>) -> Self {
        Self { checks }
    }

    /// Whether every check passed.
    pub fn is_ready(&self) -> bool {
        self.checks.iter().all(Check::passed)
    }

    /// 200 when ready, else 503.
    pub fn status(&self) -> u16 {
        if self.is_ready() { 200 } else { 503 }
    }

    /// Names of the checks that failed, in order.
    pub fn failed(&self) -> Vec<&'static str> {
        self.checks.iter().filter(|c| !c.passed()).map(Check::name).collect()
    }

    /// The body of `/ready`: `{"status": "ready" | "not_ready", "failed": [names], "checks": {name: {"ok": true,
    /// "detail"?: ..} | {"ok": false, "error": ..}}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let checks: serde_json::Map<String, serde_json::Value> = self
            .checks
            .iter()
            .map(|c| {
                let value = match &c.outcome {
                    Ok(None) => serde_json::json!({ "ok": true }),
                    Ok(Some(detail)) => serde_json::json!({ "ok": true, "detail": detail }),
                    Err(error) => serde_json::json!({ "ok": false, "error": error }),
                };
                (c.name.to_owned(), value)
            })
            .collect();
        serde_json::json!({
            "status": if self.is_ready() { "ready" } else { "not_ready" },
            "failed": self.failed(),
            "checks": checks,
        })
    }
}

/// When a service's loop last showed progress; clones share it.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    start: Instant,
    /// Milliseconds from `start` to the last beat.
    last: Arc<AtomicU64>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

impl Heartbeat {
    /// A heartbeat that beat just now.
    pub fn new() -> Self {
        Self { start: Instant::now(), last: Arc::new(AtomicU64::new(0)) }
    }

    /// Records progress.
    pub fn beat(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last.fetch_max(now, Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn age(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }

    /// `Err` saying how long the loop has been stuck, once it has not beaten within [`LIVENESS_WINDOW`].
    pub fn check(&self) -> Result<(), String> {
        let age = self.age();
        if age > LIVENESS_WINDOW {
            return Err(format!("stuck: the loop has shown no progress for {} s", age.as_secs()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_passes_and_failures_are_named() {
        let all =
            Readiness::new(vec![Check::pass("database"), Check::pass_with("lease", "leader")]);
        assert_eq!((all.is_ready(), all.status()), (true, 200));
        assert_eq!(
            all.to_json(),
            serde_json::json!({
                "status": "ready",
                "failed": [],
                "checks": { "database": { "ok": true }, "lease": { "ok": true, "detail": "leader" } },
            })
        );
        let some = Readiness::new(vec![
            Check::fail("database", "connection refused"),
            Check::pass("rpc"),
            Check::fail("lag", "900 blocks behind"),
        ]);
        assert_eq!((some.is_ready(), some.status()), (false, 503));
        assert_eq!(some.failed(), ["database", "lag"]);
        let body = some.to_json();
        assert_eq!(body["status"], "not_ready");
        assert_eq!(
            body["checks"]["database"],
            serde_json::json!({ "ok": false, "error": "connection refused" })
        );
    }

    #[tokio::test]
    async fn a_check_that_does_not_answer_in_time_fails() {
        let never = std::future::pending::<Result<(), String>>();
        let slow = Check::run_within("rpc", Duration::from_millis(20), never).await;
        assert_eq!(slow, Check::fail("rpc", "no answer within 20 ms"));
        let failed = Check::run("database", async { Err::<(), _>("refused") }).await;
        assert_eq!(failed, Check::fail("database", "refused"));
        assert!(Check::run("database", async { Ok::<_, String>(1) }).await.passed());
    }

    #[test]
    fn a_heartbeat_goes_stale_past_the_window() {
        let beat = Heartbeat::new();
        assert!(beat.check().is_ok());
        // As if the last beat were older than the window.
        let stale = Heartbeat {
            start: Instant::now() - LIVENESS_WINDOW - Duration::from_secs(5),
            last: Arc::new(AtomicU64::new(0)),
        };
        let err = stale.check().unwrap_err();
        assert!(err.starts_with("stuck: the loop has shown no progress for 30"), "{err}");
        stale.beat();
        assert!(stale.check().is_ok());
    }
}
