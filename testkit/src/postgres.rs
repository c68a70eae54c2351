//! Postgres topologies of a hosted deployment, made here from the system's own binaries: a private cluster with TLS
//! on (a certificate from a throwaway CA), a streaming replica of it (`pg_basebackup`), and PgBouncer in front.
//!
//! Each fixture is a process of its own, stopped and deleted when dropped (and by a watchdog if the test process is
//! killed). Unlike [`TestDb`](crate::TestDb), nothing is shared between tests.

use std::{
    fmt::Write as _,
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use beatstream_devkit::PgTools;
use eyre::{WrapErr, bail, ensure};

/// A throwaway certificate authority and a server certificate it signed, as PEM files in a temp dir.
#[derive(Debug)]
pub struct TestCerts {
    dir: tempfile::TempDir,
}

impl TestCerts {
    /// A new CA, and a server certificate for `localhost` and `127.0.0.1` signed by it (the `openssl` CLI).
    pub fn generate() -> eyre::Result<Self> {
        Self::generate_for(&["DNS:localhost", "IP:127.0.0.1"])
    }

    /// A new CA, and a server certificate for the given subject alternative names (`DNS:x`, `IP:y`).
    pub fn generate_for(names: &[&str]) -> eyre::Result<Self> {
        let dir = tempfile::Builder::new().prefix("beatstream-certs-").tempdir()?;
        let run = |args: &[&str]| -> eyre::Result<()> {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .wrap_err("running openssl (Debian's `openssl` package)")?;
            ensure!(
                out.status.success(),
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(())
        };
        std::fs::write(
            dir.path().join("server.ext"),
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
                 extendedKeyUsage=serverAuth\nsubjectAltName={}\n",
                names.join(",")
            ),
        )?;
        run(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"])?;
        run(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-sha256",
            "-days",
            "2",
            "-subj",
            "/CN=BeatStream test CA",
            "-out",
            "ca.pem",
        ])?;
        run(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server.key"])?;
        run(&[
            "req",
            "-new",
            "-key",
            "server.key",
            "-subj",
            "/CN=localhost",
            "-out",
            "server.csr",
        ])?;
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-sha256",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ])?;
        Ok(Self { dir })
    }

    /// The CA certificate clients trust (`sslrootcert`).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's certificate.
    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server's private key.
    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}

/// How a [`PgServer`] is set up before it starts.
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `start`"]
pub struct PgServerBuilder {
    tls: Option<(PathBuf, PathBuf)>,
    hba: Vec<String>,
    settings: Vec<(String, String)>,
}

impl PgServerBuilder {
    /// Serve TLS with this certificate and key (copied into the cluster, owned by its user, mode 0600).
    pub fn tls(mut self, certs: &TestCerts) -> Self {
        self.tls = Some((certs.server_cert(), certs.server_key()));
        self
    }

    /// Replace the default `pg_hba.conf` (trust over TCP from 127.0.0.1, and replication) with these lines.
    pub fn hba(mut self, lines: &[&str]) -> Self {
        self.hba = lines.iter().map(|l| (*l).to_owned()).collect();
        self
    }

    /// A server setting (`-c name=value`).
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// Runs `initdb` and starts the cluster on a free port of 127.0.0.1.
    pub fn start(self) -> eyre::Result<PgServer> {
        let tools = PgTools::find()?;
        let root = new_root(&tools)?;
        let data = root.join("data");
        tools.spawn_watchdog(&data, &root);
        let out = tools
            .command("initdb", &root)
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "--locale=C", "-E", "UTF8"])
            .output()?;
        ensure!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let hba = if self.hba.is_empty() {
            vec![
                "local all all trust".to_owned(),
                "host all all 127.0.0.1/32 trust".to_owned(),
                "host replication all 127.0.0.1/32 trust".to_owned(),
            ]
        } else {
            self.hba
        };
        std::fs::write(data.join("pg_hba.conf"), hba.join("\n") + "\n")?;
        let mut conf = String::new();
        if let Some((cert, key)) = &self.tls {
            for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
                let dest = data.join(to);
                std::fs::copy(from, &dest)?;
                std::fs::set_permissions(
                    &dest,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )?;
                tools.chown(&dest)?;
            }
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        for (name, value) in &self.settings {
            writeln!(conf, "{name} = '{value}'")?;
        }
        let mut auto =
            std::fs::OpenOptions::new().append(true).open(data.join("postgresql.auto.conf"))?;
        std::io::Write::write_all(&mut auto, conf.as_bytes())?;
        let mut server = PgServer { tools, root, data, port: 0 };
        server.start_on_free_port()?;
        Ok(server)
    }
}

/// A private Postgres cluster of one test, on 127.0.0.1; stopped and deleted on drop.
#[derive(Debug)]
pub struct PgServer {
    tools: PgTools,
    root: PathBuf,
    data: PathBuf,
    port: u16,
}

impl PgServer {
    /// A cluster to configure before starting it.
    pub fn builder() -> PgServerBuilder {
        PgServerBuilder::default()
    }

    /// Its TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://<user>@<host>:<port>/<db>` followed by `query` (e.g. `?sslmode=verify-full&sslrootcert=...`).
    pub fn url(&self, host: &str, user: &str, db: &str, query: &str) -> String {
        format!("postgres://{user}@{host}:{}/{db}{query}", self.port)
    }

    /// Runs SQL as the superuser in database `postgres` over the unix socket (`psql`), failing on the first error;
    /// returns the output, unaligned and without headers.
    pub fn psql(&self, sql: &str) -> eyre::Result<String> {
        self.psql_in("postgres", sql)
    }

    /// [`psql`](Self::psql) in database `db`.
    pub fn psql_in(&self, db: &str, sql: &str) -> eyre::Result<String> {
        let out = self
            .tools
            .command("psql", &self.root)
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.root)
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db, "-c", sql])
            .output()
            .wrap_err("running psql")?;
        ensure!(out.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// A streaming replica of this cluster (`pg_basebackup -R`), started read-only (hot standby) on its own port.
    pub fn replica(&self) -> eyre::Result<PgServer> {
        let root = new_root(&self.tools)?;
        let data = root.join("data");
        self.tools.spawn_watchdog(&data, &root);
        let out = self
            .tools
            .command("pg_basebackup", &root)
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
            .args(["-R", "-X", "stream", "--no-sync"])
            .output()?;
        ensure!(out.status.success(), "pg_basebackup: {}", String::from_utf8_lossy(&out.stderr));
        let mut replica = PgServer { tools: self.tools.clone(), root, data, port: 0 };
        replica.start_on_free_port()?;
        Ok(replica)
    }

    /// Waits until this replica has replayed everything its primary had written when this was called (its WAL
    /// insert position: with `synchronous_commit` off, a commit can return before its WAL is written).
    pub fn wait_caught_up(&self, primary: &PgServer) -> eyre::Result<()> {
        let lsn = primary.psql("SELECT pg_current_wal_insert_lsn()")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let done = self.psql(&format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"))?;
            if done == "t" {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "the replica did not reach {lsn} within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn start_on_free_port(&mut self) -> eyre::Result<()> {
        // Another process may take the free port before Postgres binds it: retry a few times.
        for _ in 0..3 {
            let port = PgTools::free_port()?;
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='{}' \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100",
                self.root.display()
            );
            let status = self
                .tools
                .command("pg_ctl", &self.root)
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(self.root.join("postgres.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            if status.success() {
                self.port = port;
                return Ok(());
            }
        }
        let log = std::fs::read_to_string(self.root.join("postgres.log")).unwrap_or_default();
        bail!("pg_ctl start failed; log:\n{log}")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .tools
            .command("pg_ctl", &self.root)
            .arg("-D")
            .arg(&self.data)
            .args(["stop", "-m", "immediate", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// PgBouncer (Debian's `pgbouncer` package, installed by `make test`) in front of one database; stopped on drop.
#[derive(Debug)]
pub struct PgBouncer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// PgBouncer's pool modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    /// A server connection per client connection, as long as it lasts.
    Session,
    /// A server connection per transaction: what Supavisor, Neon's pooler and most hosted poolers default to.
    Transaction,
}

impl PgBouncer {
    /// Starts PgBouncer on a free port of 127.0.0.1, pooling database `db` of `server` (reached over its unix
    /// socket, so the server may refuse every TCP connection) in `mode`, with `extra` lines added to its
    /// `[pgbouncer]` section.
    pub fn start(
        server: &PgServer,
        db: &str,
        mode: PoolMode,
        extra: &[&str],
    ) -> eyre::Result<Self> {
        let binary = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                eyre::eyre!("pgbouncer not installed: run `make test-deps` (Debian's pgbouncer)")
            })?;
        let tools = PgTools::find()?;
        let dir = tempfile::Builder::new().prefix("beatstream-pgbouncer-").tempdir()?;
        tools.chown(dir.path())?;
        let port = PgTools::free_port()?;
        let mode = match mode {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
        };
        let ini = format!(
            "[databases]\n{db} = host={socket} port={server_port} dbname={db}\n\n[pgbouncer]\n\
             listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\nauth_type = trust\n\
             auth_file = {users}\npool_mode = {mode}\ndefault_pool_size = 20\nmax_client_conn = 500\n\
             logfile = {log}\n{extra}\n",
            socket = server.root.display(),
            server_port = server.port,
            users = dir.path().join("users.txt").display(),
            log = dir.path().join("pgbouncer.log").display(),
            extra = extra.join("\n"),
        );
        std::fs::write(dir.path().join("users.txt"), "\"postgres\" \"\"\n")?;
        let config = dir.path().join("pgbouncer.ini");
        std::fs::write(&config, ini)?;
        for f in ["users.txt", "pgbouncer.ini"] {
            tools.chown(&dir.path().join(f))?;
        }
        let child = tools
            .command(binary.to_str().expect("a UTF-8 path"), dir.path())
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .wrap_err("starting pgbouncer")?;
        let bouncer = Self { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            ensure!(Instant::now() < deadline, "pgbouncer did not listen on {port} within 15 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(bouncer)
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn new_root(tools: &PgTools) -> eyre::Result<PathBuf> {
    let root = tempfile::Builder::new().prefix("beatstream-pg-").tempdir()?.keep();
    tools.chown(&root)?;
    Ok(root)
}
