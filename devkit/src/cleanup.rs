//! Drops test databases off the test's thread, and finishes the job at process exit.
//!
//! `Drop` cannot await and a `#[tokio::test]` runtime is gone right after the test, so
//! drops go to one worker thread with its own runtime. Test runners exit the process as
//! soon as the test returns, so an exit hook waits (bounded) for queued drops, then stops
//! the private cluster if one was started.

use std::{
    sync::{
        Mutex, Once, OnceLock,
        mpsc::{self, Receiver, Sender},
    },
    time::Duration,
};

use sqlx::{Connection, Executor, PgConnection};

/// Longest the exit hook waits for queued drops.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

struct Job {
    admin_url: String,
    database: String,
}

struct Worker {
    jobs: Mutex<Option<Sender<Job>>>,
    done: Mutex<Receiver<()>>,
}

static WORKER: OnceLock<Worker> = OnceLock::new();

/// What the exit hook runs once the queued drops are done: stopping the private cluster, set by `cluster` (which
/// this module does not name, so the two do not depend on each other).
static AFTER_DROPS: OnceLock<fn()> = OnceLock::new();

/// Queues `DROP DATABASE` for a test database; returns at once.
pub(crate) fn drop_database(admin_url: String, database: String) {
    let worker = WORKER.get_or_init(start_worker);
    if let Some(jobs) = worker.jobs.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        let _ = jobs.send(Job { admin_url, database });
    }
}

/// Registers the exit hook, which will run `then` after the queued drops (only the first `then` counts).
pub(crate) fn ensure_exit_hook_then(then: fn()) {
    let _ = AFTER_DROPS.set(then);
    ensure_exit_hook();
}

/// Registers the exit hook once per process.
fn ensure_exit_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // SAFETY: `on_exit` is a plain `extern "C"` function that never unwinds.
        if unsafe { libc::atexit(on_exit) } != 0 {
            eprintln!("devkit: atexit failed; test databases may be left behind");
        }
    });
}

extern "C" fn on_exit() {
    // A panic must not unwind across the C boundary.
    let _ = std::panic::catch_unwind(|| {
        flush();
        if let Some(then) = AFTER_DROPS.get() {
            then();
        }
    });
}

/// Closes the queue and waits for the worker to drain it.
fn flush() {
    let Some(worker) = WORKER.get() else { return };
    worker.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
    let _ = worker.done.lock().unwrap_or_else(|e| e.into_inner()).recv_timeout(FLUSH_TIMEOUT);
}

fn start_worker() -> Worker {
    ensure_exit_hook();
    let (jobs, rx) = mpsc::channel::<Job>();
    let (done_tx, done) = mpsc::channel();
    let spawned = std::thread::Builder::new().name("devkit-db-cleanup".into()).spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        if let Ok(runtime) = runtime {
            for job in rx {
                if let Err(e) = runtime.block_on(drop_now(&job)) {
                    eprintln!("devkit: could not drop database {}: {e}", job.database);
                }
            }
        }
        let _ = done_tx.send(());
    });
    if let Err(e) = spawned {
        eprintln!("devkit: no cleanup thread ({e}); test databases will be left behind");
    }
    Worker { jobs: Mutex::new(Some(jobs)), done: Mutex::new(done) }
}

async fn drop_now(job: &Job) -> sqlx::Result<()> {
    let mut conn = PgConnection::connect(&job.admin_url).await?;
    // FORCE ends connections the test's pool may still hold (Postgres 13+).
    conn.execute(format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, job.database).as_str())
        .await?;
    conn.close().await
}
