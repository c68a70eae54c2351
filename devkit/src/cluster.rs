//! A throwaway Postgres cluster for machines that have the binaries but no server.
//!
//! Started at most once per process, in a temp dir, listening on 127.0.0.1 only (its unix
//! socket stays in the temp dir too). It is stopped and deleted by the exit hook in
//! `cleanup`, and by a watchdog shell if the process dies without running exit hooks.

use std::{
    ffi::CString,
    net::TcpListener,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
};

use crate::{Error, Result, cleanup};

/// The running cluster, kept where the exit hook can find it; statics are never dropped.
static CLUSTER: OnceLock<Cluster> = OnceLock::new();

struct Cluster {
    root: PathBuf,
    data: PathBuf,
    pg_ctl: PathBuf,
    owner: Option<Owner>,
}

/// Unprivileged user to run Postgres as: `initdb` and `pg_ctl` refuse to run as root.
#[derive(Clone, Copy, Debug)]
struct Owner {
    uid: u32,
    gid: u32,
}

/// The system's Postgres server tools (`initdb`, `pg_ctl`, `pg_basebackup`, ...) and the user to run them as, for
/// test fixtures that need a cluster of their own (TLS, a replica, a pooler in front).
#[derive(Clone, Debug)]
pub struct PgTools {
    bin: PathBuf,
    owner: Option<Owner>,
}

impl PgTools {
    /// Finds the tools (PATH, else the newest `/usr/lib/postgresql/<v>/bin`) and, when running as root, the
    /// unprivileged user (`postgres`, else `nobody`) they must run as.
    pub fn find() -> Result<Self> {
        Ok(Self { bin: find_bin_dir()?, owner: owner_if_root()? })
    }

    /// A command running `tool` from the server's bin directory (or any program, given a path with a `/`) as the
    /// cluster's owner, in `dir`.
    pub fn command(&self, tool: &str, dir: &Path) -> Command {
        // `psql` and `pg_basebackup` may live on PATH apart from the server's own `initdb` and `pg_ctl`.
        let program = match self.bin.join(tool) {
            _ if tool.contains('/') => PathBuf::from(tool),
            own if own.is_file() => own,
            _ => PathBuf::from(tool),
        };
        command(&program, self.owner, dir)
    }

    /// Gives `path` to the cluster's owner (a no-op when not running as root).
    pub fn chown(&self, path: &Path) -> Result<()> {
        if let Some(o) = self.owner {
            std::os::unix::fs::chown(path, Some(o.uid), Some(o.gid))
                .map_err(Error::io(format!("chown {}", path.display())))?;
        }
        Ok(())
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    pub fn free_port() -> Result<u16> {
        free_port()
    }

    /// Stops the cluster in `data` and deletes `root` if this process dies without running its destructors
    /// (SIGKILL, abort, a runner's timeout).
    pub fn spawn_watchdog(&self, data: &Path, root: &Path) {
        spawn_watchdog(&self.bin.join("pg_ctl"), self.owner, data, root);
    }
}

/// Creates and starts the cluster, returning its TCP port.
pub(crate) fn start() -> Result<u16> {
    if CLUSTER.get().is_some() {
        return Err(Error::Cluster("an earlier start failed in this process".into()));
    }
    let bin = find_bin_dir()?;
    let owner = owner_if_root()?;
    let root = tempfile::Builder::new()
        .prefix("beatstream-pg-")
        .tempdir()
        .map_err(Error::io("creating temp dir for Postgres"))?
        .keep();
    if let Some(o) = owner {
        std::os::unix::fs::chown(&root, Some(o.uid), Some(o.gid))
            .map_err(Error::io(format!("chown {}", root.display())))?;
    }
    let data = root.join("data");
    let cluster = CLUSTER.get_or_init(|| Cluster { root, data, pg_ctl: bin.join("pg_ctl"), owner });
    // Both before initdb, so even a crash during initdb leaves nothing behind.
    cleanup::ensure_exit_hook_then(stop);
    cluster.spawn_watchdog();
    let initdb = command(&bin.join("initdb"), owner, &cluster.root)
        .arg("-D")
        .arg(&cluster.data)
        .args(["-U", "postgres", "-A", "trust", "--no-sync", "--locale=C", "-E", "UTF8"])
        .output()
        .map_err(Error::io("running initdb"))?;
    if !initdb.status.success() {
        return Err(Error::Cluster(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr).trim()
        )));
    }

    // Another process may grab the free port before Postgres binds it: retry a few times.
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port()?;
        if cluster.pg_ctl_start(port)? {
            return Ok(port);
        }
        last = cluster.log_tail();
    }
    Err(Error::Cluster(format!("pg_ctl start failed; log:\n{last}")))
}

/// Stops and deletes the cluster if this process started one.
pub(crate) fn stop() {
    if let Some(cluster) = CLUSTER.get() {
        // Immediate: the data is thrown away, so skip the shutdown checkpoint.
        let _ = command(&cluster.pg_ctl, cluster.owner, &cluster.root)
            .arg("-D")
            .arg(&cluster.data)
            .args(["stop", "-m", "immediate", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&cluster.root);
    }
}

impl Cluster {
    fn pg_ctl_start(&self, port: u16) -> Result<bool> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='{}' \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=200",
            self.root.display()
        );
        // Null stdio: a daemon holding the test's stdout pipe makes test runners wait.
        let status = command(&self.pg_ctl, self.owner, &self.root)
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.root.join("postgres.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(Error::io("running pg_ctl start"))?;
        Ok(status.success())
    }

    /// Stops the cluster if this process dies without exit hooks (SIGKILL, abort).
    fn spawn_watchdog(&self) {
        spawn_watchdog(&self.pg_ctl, self.owner, &self.data, &self.root);
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.root.join("postgres.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// Stops the cluster in `data` with `pg_ctl` and deletes `root` once this process is gone.
fn spawn_watchdog(pg_ctl: &Path, owner: Option<Owner>, data: &Path, root: &Path) {
    // `kill -0` cannot see our pid when the watchdog runs as another user; /proc can.
    const SCRIPT: &str = r#"while kill -0 "$0" 2>/dev/null || [ -d "/proc/$0" ]; do sleep 1; done
"$1" -D "$2" stop -m immediate >/dev/null 2>&1
rm -rf "$3""#;
    let spawned = command(Path::new("sh"), owner, root)
            .arg("-c")
            .arg(SCRIPT)
            .arg(std::process::id().to_string())
            .arg(pg_ctl)
            .arg(data)
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Own process group, so a runner killing ours on timeout spares the watchdog.
            .process_group(0)
            .spawn();
    if let Err(e) = spawned {
        eprintln!("devkit: no Postgres watchdog ({e}); a crash would leak the cluster");
    }
}

fn command(program: &Path, owner: Option<Owner>, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    // The unprivileged owner may not be allowed into the test's working directory.
    cmd.current_dir(dir);
    if let Some(o) = owner {
        cmd.uid(o.uid).gid(o.gid);
    }
    cmd
}

/// `initdb` and `pg_ctl` from PATH, else the newest `/usr/lib/postgresql/<v>/bin`.
fn find_bin_dir() -> Result<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(dir) = on_path.into_iter().find(|d| has_tools(d)) {
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            has_tools(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| Error::NoPostgres("initdb not on PATH nor in /usr/lib/postgresql".into()))
}

fn owner_if_root() -> Result<Option<Owner>> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    ["postgres", "nobody"]
        .into_iter()
        .find_map(lookup_user)
        .map(Some)
        .ok_or_else(|| Error::Cluster("running as root and no `postgres` or `nobody` user".into()))
}

fn lookup_user(name: &str) -> Option<Owner> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: c_name is a valid C string; the returned record is read before any other
    // getpw* call could overwrite it. Only the test fixture thread calls this.
    let pw = unsafe { libc::getpwnam(c_name.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: pw is non-null and points to libc's static passwd record.
    let pw = unsafe { &*pw };
    Some(Owner { uid: pw.pw_uid, gid: pw.pw_gid })
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(Error::io("finding a free port"))?;
    Ok(listener.local_addr().map_err(Error::io("finding a free port"))?.port())
}
