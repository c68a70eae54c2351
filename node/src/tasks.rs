//! The one task supervisor of the binary: every service runs as a named critical task, and the first one to fail,
//! panic or return before shutdown stops the node with its name and cause (after reth's `crates/tasks`).
//!
//! `beatstream node` and `beatstream dev` both run their services through it.

use std::{fmt, future::Future, time::Duration};

use tokio::{
    task::{JoinError, JoinSet},
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

/// How a critical task ended when it should not have.
#[derive(Debug)]
pub(crate) enum TaskFailure {
    /// The task returned an error.
    Failed(eyre::Report),
    /// The task panicked; the panic message.
    Panicked(String),
    /// The task returned `Ok` while the node was still running.
    ExitedEarly,
    /// The task had not stopped within the grace period after shutdown and was aborted.
    Hung(Duration),
}

/// A critical task that stopped the node: which one and why.
#[derive(Debug)]
pub(crate) struct CriticalTaskError {
    /// The task's name, e.g. `indexer`.
    pub(crate) name: &'static str,
    /// What happened to it.
    pub(crate) failure: TaskFailure,
}

impl fmt::Display for CriticalTaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name;
        match &self.failure {
            TaskFailure::Failed(e) => {
                // The cause's chain, leaving out a source whose text its error already printed.
                let mut message = e.to_string();
                for cause in e.chain().skip(1) {
                    let cause = cause.to_string();
                    if !message.contains(&cause) {
                        message = format!("{message}: {cause}");
                    }
                }
                write!(f, "{name} stopped: {message}")
            }
            TaskFailure::Panicked(message) => write!(f, "{name} panicked: {message}"),
            TaskFailure::ExitedEarly => write!(f, "{name} exited while the node was running"),
            TaskFailure::Hung(grace) => {
                write!(f, "{name} did not stop within {}s of shutdown", grace.as_secs())
            }
        }
    }
}

// No `source`: the message already carries the cause's whole chain, which would otherwise print twice.
impl std::error::Error for CriticalTaskError {}

/// Runs named critical tasks until shutdown or the first failure.
///
/// Every task gets [`Supervisor::token`]; a failure cancels it, so the others stop too.
#[derive(Debug)]
pub(crate) struct Supervisor {
    tasks: JoinSet<Result<(), TaskFailure>>,
    names: Vec<(tokio::task::Id, &'static str)>,
    shutdown: CancellationToken,
    grace: Option<Duration>,
}

impl Supervisor {
    /// A supervisor whose tasks stop when `shutdown` is cancelled, and which cancels it when one of them fails.
    pub(crate) fn new(shutdown: CancellationToken) -> Self {
        Self { tasks: JoinSet::new(), names: Vec::new(), shutdown, grace: None }
    }

    /// After shutdown, abort tasks still running after `grace` and report them, instead of waiting for ever.
    pub(crate) fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// The token every task must stop on.
    pub(crate) fn token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Spawns `task` as critical: an error, a panic or an `Ok` before shutdown stops the node.
    pub(crate) fn spawn_critical<F, E>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<eyre::Report> + Send + 'static,
    {
        let shutdown = self.shutdown.clone();
        // Every event of the task carries its name, so `RUST_LOG` output of one service can be told apart.
        let span = info_span!(target: "beatstream::node", "task", name);
        let task = async move {
            match task.await {
                Err(e) => Err(TaskFailure::Failed(e.into())),
                Ok(()) if !shutdown.is_cancelled() => Err(TaskFailure::ExitedEarly),
                Ok(()) => Ok(()),
            }
        };
        let handle = self.tasks.spawn(task.instrument(span));
        self.names.push((handle.id(), name));
    }

    /// Waits until every task has stopped: normally after shutdown, or after the first failure, which cancels the
    /// shutdown token. Returns that first failure; later ones are logged.
    pub(crate) async fn wait(mut self) -> Result<(), CriticalTaskError> {
        let mut first: Option<CriticalTaskError> = None;
        // Set once shutdown begins, when there is a grace period.
        let mut deadline: Option<Instant> = None;
        loop {
            let joined = match (self.grace, deadline) {
                (Some(grace), None) => tokio::select! {
                    joined = self.tasks.join_next_with_id() => joined,
                    _ = self.shutdown.cancelled() => {
                        deadline = Some(Instant::now() + grace);
                        continue;
                    }
                },
                (Some(grace), Some(at)) => {
                    match tokio::time::timeout_at(at, self.tasks.join_next_with_id()).await {
                        Ok(joined) => joined,
                        Err(_) => {
                            self.abort_hung(grace, &mut first).await;
                            break;
                        }
                    }
                }
                (None, _) => self.tasks.join_next_with_id().await,
            };
            let Some(joined) = joined else { break };
            let (name, outcome) = match joined {
                Ok((id, outcome)) => (self.name(id), outcome),
                Err(e) => (self.name(e.id()), Err(join_failure(e))),
            };
            match outcome {
                Ok(()) => info!(target: "beatstream::node", task = name, "stopped"),
                Err(failure) => {
                    let failed = CriticalTaskError { name, failure };
                    if first.is_none() {
                        error!(target: "beatstream::node", task = name, error = %failed, "critical task failed, stopping the node");
                        self.shutdown.cancel();
                        first = Some(failed);
                    } else {
                        error!(target: "beatstream::node", task = name, error = %failed, "critical task failed");
                    }
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Aborts the tasks that outlived the grace period and records them.
    async fn abort_hung(&mut self, grace: Duration, first: &mut Option<CriticalTaskError>) {
        self.tasks.abort_all();
        while let Some(joined) = self.tasks.join_next_with_id().await {
            let id = match &joined {
                Ok((id, _)) => *id,
                Err(e) => e.id(),
            };
            let name = self.name(id);
            warn!(target: "beatstream::node", task = name, grace_secs = grace.as_secs(), "did not stop in time, aborted");
            if first.is_none() {
                *first = Some(CriticalTaskError { name, failure: TaskFailure::Hung(grace) });
            }
        }
    }

    fn name(&self, id: tokio::task::Id) -> &'static str {
        self.names.iter().find(|(i, _)| *i == id).map_or("unnamed task", |(_, name)| name)
    }
}

/// A task that did not return: its panic message, or that it was cancelled.
fn join_failure(e: JoinError) -> TaskFailure {
    if !e.is_panic() {
        return TaskFailure::Panicked("cancelled".into());
    }
    let payload = e.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".into());
    TaskFailure::Panicked(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-behaved service: runs until the token is cancelled, then reports whether it saw it.
    async fn service(token: CancellationToken) -> eyre::Result<()> {
        token.cancelled().await;
        Ok(())
    }

    #[tokio::test]
    async fn a_panicking_task_stops_the_node_with_its_name_and_message() {
        let mut tasks = Supervisor::new(CancellationToken::new());
        let token = tasks.token();
        tasks.spawn_critical("indexer", service(token.clone()));
        tasks.spawn_critical("keeper", async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            panic!("nonce gap at 7");
            #[allow(unreachable_code)]
            Ok::<(), eyre::Report>(())
        });
        let err = tasks.wait().await.expect_err("a panic must stop the node");
        assert_eq!(err.name, "keeper");
        assert!(matches!(&err.failure, TaskFailure::Panicked(m) if m == "nonce gap at 7"), "{err}");
        assert_eq!(err.to_string(), "keeper panicked: nonce gap at 7");
        assert!(token.is_cancelled(), "the other services were not told to stop");
    }

    #[tokio::test]
    async fn a_task_exiting_early_stops_the_node() {
        let mut tasks = Supervisor::new(CancellationToken::new());
        let token = tasks.token();
        tasks.spawn_critical("api", service(token.clone()));
        tasks.spawn_critical("relay", async { Ok::<(), eyre::Report>(()) });
        let err = tasks.wait().await.expect_err("an early exit must stop the node");
        assert_eq!(err.name, "relay");
        assert!(matches!(err.failure, TaskFailure::ExitedEarly), "{err}");
        assert_eq!(err.to_string(), "relay exited while the node was running");
        assert!(token.is_cancelled());
    }

    #[tokio::test]
    async fn a_failing_task_stops_the_node_with_its_error() {
        let mut tasks = Supervisor::new(CancellationToken::new());
        let token = tasks.token();
        tasks.spawn_critical("relay", service(token.clone()));
        tasks.spawn_critical("indexer", async {
            Err::<(), _>(std::io::Error::other("connection refused"))
        });
        let err = tasks.wait().await.expect_err("an error must stop the node");
        assert_eq!(err.name, "indexer");
        assert_eq!(err.to_string(), "indexer stopped: connection refused");
        assert!(token.is_cancelled());
    }

    #[tokio::test]
    async fn the_cause_chain_is_printed_once() {
        let mut tasks = Supervisor::new(CancellationToken::new());
        tasks.spawn_critical("api", async {
            let io = std::io::Error::other("no such file");
            Err::<(), _>(
                eyre::Report::new(io)
                    .wrap_err("reading /x.json")
                    .wrap_err("loading the deployment"),
            )
        });
        let err = tasks.wait().await.expect_err("an error must stop the node");
        assert_eq!(
            err.to_string(),
            "api stopped: loading the deployment: reading /x.json: no such file"
        );
    }

    #[tokio::test]
    async fn shutdown_stops_every_task_cleanly() {
        let shutdown = CancellationToken::new();
        let mut tasks = Supervisor::new(shutdown.clone());
        for name in ["indexer", "relay", "keeper", "api"] {
            tasks.spawn_critical(name, service(tasks.token()));
        }
        shutdown.cancel();
        tasks.wait().await.expect("a clean shutdown is not a failure");
    }

    #[tokio::test]
    async fn a_task_that_ignores_shutdown_is_aborted_after_the_grace_period() {
        let shutdown = CancellationToken::new();
        let mut tasks = Supervisor::new(shutdown.clone()).with_grace(Duration::from_millis(50));
        tasks.spawn_critical("api", service(tasks.token()));
        tasks.spawn_critical("keeper", async {
            std::future::pending::<()>().await;
            Ok::<(), eyre::Report>(())
        });
        shutdown.cancel();
        let err = tasks.wait().await.expect_err("a hung task is reported");
        assert_eq!(err.name, "keeper");
        assert!(matches!(err.failure, TaskFailure::Hung(_)), "{err}");
    }
}
