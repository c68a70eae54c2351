//! What sits between a service and a hosted JSON-RPC node, in front of a test's anvil: TLS ([`TlsProxy`], https://
//! and wss:// with a throwaway CA) and a proxy that misbehaves on cue ([`FaultProxy`]: HTTP 429 with `Retry-After`,
//! 503, a JSON-RPC rate-limit error, methods it does not serve). Each records what it was asked and when.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use eyre::WrapErr;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::{net::TcpListener, task::JoinHandle};
use url::Url;

use crate::postgres::TestCerts;

/// TLS in front of a plain endpoint (anvil's http and ws port): each connection's TLS is ended here with the
/// server certificate of a [`TestCerts`] and its bytes forwarded as they are.
#[derive(Debug)]
pub struct TlsProxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TlsProxy {
    /// Listens on a free port of 127.0.0.1, forwarding to `upstream` (host and port of `url`).
    pub async fn start(upstream: &Url, certs: &TestCerts) -> eyre::Result<Self> {
        let upstream = upstream
            .socket_addrs(|| None)?
            .into_iter()
            .next()
            .ok_or_else(|| eyre::eyre!("{upstream} has no address"))?;
        let chain =
            CertificateDer::pem_file_iter(certs.server_cert())?.collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(certs.server_key())?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that does not trust the CA ends its handshake: nothing to forward.
                    let Ok(mut tls) = acceptor.accept(socket).await else { return };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// `https://127.0.0.1:<port>` (the certificate names 127.0.0.1 and localhost).
    pub fn https_url(&self) -> Url {
        format!("https://{}", self.addr).parse().expect("a valid URL")
    }

    /// `wss://127.0.0.1:<port>`.
    pub fn wss_url(&self) -> Url {
        format!("wss://{}", self.addr).parse().expect("a valid URL")
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a [`FaultProxy`] does to the requests it is told to.
#[derive(Clone, Debug)]
pub enum Fault {
    /// HTTP 429 with this `Retry-After` value (seconds, or an HTTP date).
    TooManyRequests {
        /// The header's value.
        retry_after: String,
    },
    /// HTTP 503 without a body.
    Unavailable,
    /// HTTP 200 with the JSON-RPC error -32005 and this message (e.g. "rate limit exceeded, try again in 1s").
    RateLimitError {
        /// The error's message.
        message: String,
    },
}

/// One request the proxy was asked, and what it did.
#[derive(Clone, Debug)]
pub struct Seen {
    /// When it arrived.
    pub at: Instant,
    /// Its JSON-RPC method (the first, for a batch).
    pub method: String,
    /// The request body as sent: a retry of a request sends the same bytes again.
    pub body: Bytes,
    /// The fault answered instead of forwarding, if any; `None` when anvil answered.
    pub fault: Option<Fault>,
    /// Whether it was answered "method not found".
    pub missing: bool,
}

#[derive(Debug)]
struct Rules {
    /// The fault answered to the next `times` requests (`usize::MAX`: all of them).
    fault: Option<(Fault, usize)>,
    /// Methods answered with -32601.
    missing: Vec<String>,
    seen: Vec<Seen>,
}

#[derive(Debug)]
struct Shared {
    upstream: Url,
    client: reqwest::Client,
    rules: Mutex<Rules>,
}

/// A JSON-RPC proxy over HTTP in front of `upstream` that answers some requests itself, as rate-limited, overloaded
/// or partial providers do.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy to `upstream` (anvil's http URL) that forwards everything until told otherwise.
    pub async fn start(upstream: Url) -> eyre::Result<Self> {
        beatstream_primitives::tls::install_crypto_provider();
        let shared = Arc::new(Shared {
            upstream,
            client: reqwest::Client::new(),
            rules: Mutex::new(Rules { fault: None, missing: Vec::new(), seen: Vec::new() }),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new().route("/", post(handle)).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> Url {
        format!("http://{}", self.addr).parse().expect("a valid URL")
    }

    /// Answers the next `times` requests with `fault` (`usize::MAX`: every request from now on).
    pub fn fail_next(&self, times: usize, fault: Fault) {
        self.shared.rules.lock().expect("not poisoned").fault = Some((fault, times));
    }

    /// Answers `method` with the JSON-RPC error -32601, as a node that does not serve it.
    pub fn without_method(&self, method: &str) {
        self.shared.rules.lock().expect("not poisoned").missing.push(method.to_owned());
    }

    /// Every request so far, in the order they arrived.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.rules.lock().expect("not poisoned").seen.clone()
    }

    /// How many requests answered with a fault of a `kind` were sent again (a retry sends the very same bytes, its
    /// id included; another request has another id); fails when one came back sooner than `pause` after its fault.
    pub fn retried(&self, kind: fn(&Fault) -> bool, pause: Duration) -> eyre::Result<usize> {
        let seen = self.seen();
        let mut retried = 0;
        for (i, refused) in
            seen.iter().enumerate().filter(|(_, s)| s.fault.as_ref().is_some_and(kind))
        {
            let Some(again) = seen[i + 1..].iter().find(|s| s.body == refused.body) else {
                continue;
            };
            let waited = again.at - refused.at;
            eyre::ensure!(
                waited >= pause,
                "{} answered {:?} was sent again after {waited:?}, before {pause:?}",
                refused.method,
                refused.fault
            );
            retried += 1;
        }
        Ok(retried)
    }

    /// Waits (a minute at most) until `count` requests answered with a fault of a `kind` were sent again, each no
    /// sooner than `pause` after its fault.
    pub async fn wait_retried(
        &self,
        kind: fn(&Fault) -> bool,
        count: usize,
        pause: Duration,
    ) -> eyre::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.retried(kind, pause)? < count {
            eyre::ensure!(
                Instant::now() < deadline,
                "{count} faulted requests were not sent again"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let first = if request.is_array() { &request[0] } else { &request };
    let method = first["method"].as_str().unwrap_or_default().to_owned();
    let (fault, missing) = {
        let mut rules = shared.rules.lock().expect("not poisoned");
        let missing = rules.missing.contains(&method);
        let fault = match &mut rules.fault {
            Some((fault, times)) if *times > 0 && !missing => {
                let fault = fault.clone();
                *times = times.saturating_sub(usize::from(*times != usize::MAX));
                Some(fault)
            }
            _ => None,
        };
        let seen =
            Seen { at: Instant::now(), method, body: body.clone(), fault: fault.clone(), missing };
        rules.seen.push(seen);
        (fault, missing)
    };
    if missing {
        let error = serde_json::json!({
            "jsonrpc": "2.0",
            "id": first["id"],
            "error": { "code": -32601, "message": format!("the method {} does not exist/is not available", first["method"].as_str().unwrap_or_default()) },
        });
        return ([(header::CONTENT_TYPE, "application/json")], error.to_string()).into_response();
    }
    match fault {
        Some(Fault::TooManyRequests { retry_after }) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after)],
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":429,"message":"Too Many Requests"}}"#,
        )
            .into_response(),
        Some(Fault::Unavailable) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Some(Fault::RateLimitError { message }) => {
            let error = serde_json::json!({
                "jsonrpc": "2.0", "id": first["id"], "error": { "code": -32005, "message": message },
            });
            ([(header::CONTENT_TYPE, "application/json")], error.to_string()).into_response()
        }
        None => forward(&shared, body).await,
    }
}

async fn forward(shared: &Shared, body: Bytes) -> Response {
    let sent = shared
        .client
        .post(shared.upstream.clone())
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .wrap_err("forwarding to anvil");
    let answer = match sent {
        Ok(resp) => {
            let status = resp.status();
            resp.bytes().await.map(|b| (status, b)).wrap_err("reading anvil's answer")
        }
        Err(e) => Err(e),
    };
    match answer {
        Ok((status, bytes)) => (
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
            [(header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, format!("{e:#}")).into_response(),
    }
}

/// An endpoint nothing listens on (port 1 of 127.0.0.1, as elsewhere in the tests): connections are refused.
pub fn refused_url() -> Url {
    "http://127.0.0.1:1".parse().expect("a valid URL")
}
