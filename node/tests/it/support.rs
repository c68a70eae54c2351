//! What the tests of the binary as a process share: free addresses, plain HTTP, waiting on conditions, the log lines
//! of a node, and a node killed when a test fails.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    process::Child,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

/// How long any one condition may take to come true on a loaded two-core machine.
pub(crate) const WAIT: Duration = Duration::from_secs(120);
pub(crate) fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// One HTTP/1.1 request; the status and the body (as sent: a chunked body keeps its chunk sizes).
pub(crate) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Ok((status, body))
}

/// Waits until `check` returns `Some`, polling; fails naming `what` after [`WAIT`].
pub(crate) async fn until<T, F, Fut>(what: &str, mut check: F) -> eyre::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = eyre::Result<Option<T>>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        eyre::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The node's log lines, collected from its stderr.
#[derive(Clone, Default)]
pub(crate) struct Logs(pub(crate) Arc<Mutex<Vec<String>>>);

impl Logs {
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The first JSON event of `target` with `message`.
    pub(crate) fn event(&self, target: &str, message: &str) -> Option<Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["target"] == target && e["fields"]["message"] == message)
    }
}

/// Kills the node if the test fails before it stops it.
pub(crate) struct Node(pub(crate) Option<Child>);

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `beatstream <args>` with no `BEATSTREAM_*` or `DATABASE_URL` variable of the test's environment.
pub(crate) fn beatstream() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_beatstream"));
    for (key, _) in std::env::vars() {
        if key.starts_with("BEATSTREAM_") || key == "DATABASE_URL" {
            cmd.env_remove(key);
        }
    }
    cmd
}

impl Node {
    /// Starts `cmd` (a `beatstream` command logging JSON) and collects its stderr lines.
    pub(crate) fn spawn(mut cmd: std::process::Command) -> std::io::Result<(Self, Logs)> {
        use std::io::BufRead;
        cmd.env("BEATSTREAM_LOG_FORMAT", "json")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn()?;
        let stderr = child.stderr.take().expect("piped");
        let logs = Logs::default();
        let collected = logs.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                collected.0.lock().unwrap().push(line);
            }
        });
        Ok((Self(Some(child)), logs))
    }
}
