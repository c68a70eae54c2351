//! A connection to a nitronode that stays up: requests with ids and timeouts, the node's pings answered,
//! reconnection with backoff.
//!
//! One background task owns the WebSocket. [`Client::request`] hands it a frame and waits for the answer with the
//! same id; a connection that drops fails the requests waiting on it with [`Error::Disconnected`] (the caller
//! decides whether a retry is safe) and is re-dialled with exponential backoff. The node pushes nothing in v1, so
//! every answer belongs to a request.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::{self, protocol::WebSocketConfig};
use tracing::{debug, info, warn};
use url::Url;

use crate::{
    Error, NodeError, Result,
    rpc::{Kind, MAX_FRAME_BYTES, Message},
};

/// `node.v1.ping`, the keepalive request (also one of the typed methods).
pub const PING: &str = "node.v1.ping";

/// Connection settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `ws://` or `wss://` URL of the node's RPC endpoint (`.../v1/ws`).
    pub url: Url,
    /// How long a request waits for its answer (including waiting for a connection).
    pub request_timeout: Duration,
    /// First reconnect delay; doubles per failure.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// A `node.v1.ping` is sent after this long without traffic, so the node never sees us silent.
    pub keepalive: Duration,
}

impl ClientConfig {
    /// Defaults for `url`: 10 s requests, backoff 200 ms to 10 s, keepalive every 4 s (the node drops a peer
    /// silent for 10 s).
    pub fn new(url: Url) -> Self {
        Self {
            url,
            request_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            keepalive: Duration::from_secs(4),
        }
    }
}

/// Whether the client is connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Dialling or waiting to re-dial.
    Connecting,
    /// A socket is open.
    Connected,
    /// The client was shut down.
    Closed,
}

struct Call {
    message: Message,
    reply: oneshot::Sender<Result<Value>>,
}

/// A handle on the connection; clones share it. The connection closes when the last handle is dropped.
#[derive(Clone, Debug)]
pub struct Client {
    calls: mpsc::Sender<Call>,
    next_id: Arc<AtomicU64>,
    status: watch::Receiver<Status>,
    timeout: Duration,
}

impl Client {
    /// Starts the connection task; it dials at once and keeps re-dialling. Returns without waiting for the first
    /// connection (see [`Client::wait_connected`]).
    pub fn spawn(config: ClientConfig) -> Self {
        let (calls, rx) = mpsc::channel(1024);
        let (status_tx, status) = watch::channel(Status::Connecting);
        let timeout = config.request_timeout;
        tokio::spawn(run(config, rx, status_tx));
        Self { calls, next_id: Arc::new(AtomicU64::new(1)), status, timeout }
    }

    /// The current status.
    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// A receiver of status changes.
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Waits until a socket is open, at most `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<()> {
        let mut status = self.status.clone();
        tokio::time::timeout(timeout, status.wait_for(|s| *s != Status::Connecting))
            .await
            .map_err(|_| Error::Timeout { method: "connect".into() })?
            .map_err(|_| Error::Closed)
            .and_then(|s| if *s == Status::Connected { Ok(()) } else { Err(Error::Closed) })
    }

    /// Sends `method` with `payload` and waits for the answer's payload.
    pub async fn request_raw(&self, method: &str, payload: Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let call = Call { message: Message::request(id, method, payload), reply };
        let work = async {
            self.calls.send(call).await.map_err(|_| Error::Closed)?;
            answer.await.map_err(|_| Error::Closed)?
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| Error::Timeout { method: method.into() })?
    }

    /// A typed request.
    pub async fn request<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<R> {
        let payload = serde_json::to_value(params).map_err(|e| Error::Encode(e.to_string()))?;
        let answer = self.request_raw(method, payload).await?;
        serde_json::from_value(answer)
            .map_err(|e| Error::Decode { method: method.into(), detail: e.to_string() })
    }
}

/// `wss://` needs rustls' process-wide crypto provider; `ring` unless the program installed one first.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

async fn run(config: ClientConfig, mut calls: mpsc::Receiver<Call>, status: watch::Sender<Status>) {
    install_crypto_provider();
    let mut backoff = config.backoff_min;
    loop {
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME_BYTES * 8))
            .max_frame_size(Some(MAX_FRAME_BYTES * 8));
        let dial = tokio_tungstenite::connect_async_with_config(
            config.url.as_str(),
            Some(ws_config),
            true,
        );
        let socket = tokio::select! {
            result = dial => result,
            _ = status.closed() => return,
        };
        let ws = match socket {
            Ok((ws, _)) => ws,
            Err(e) => {
                debug!(target: "beatstream::yellow", url = %config.url, error = %e, retry_in = ?backoff, "node unreachable");
                let _ = status.send(Status::Connecting);
                // Fail calls that cannot be sent rather than hold them through the whole backoff.
                let sleep = tokio::time::sleep(backoff);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = &mut sleep => break,
                        call = calls.recv() => match call {
                            Some(call) => { let _ = call.reply.send(Err(Error::Disconnected)); }
                            None => { let _ = status.send(Status::Closed); return; }
                        },
                    }
                }
                backoff = (backoff * 2).min(config.backoff_max);
                continue;
            }
        };
        info!(target: "beatstream::yellow", url = %config.url, "connected to nitronode");
        backoff = config.backoff_min;
        let _ = status.send(Status::Connected);
        let end = session(&config, ws, &mut calls).await;
        match end {
            SessionEnd::Shutdown => {
                let _ = status.send(Status::Closed);
                return;
            }
            SessionEnd::Dropped(reason) => {
                warn!(target: "beatstream::yellow", url = %config.url, %reason, "connection to nitronode lost");
                let _ = status.send(Status::Connecting);
            }
        }
    }
}

enum SessionEnd {
    Shutdown,
    Dropped(String),
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn session(
    config: &ClientConfig,
    mut ws: Ws,
    calls: &mut mpsc::Receiver<Call>,
) -> SessionEnd {
    let mut pending: HashMap<u64, (String, oneshot::Sender<Result<Value>>)> = HashMap::new();
    let fail_all = |pending: &mut HashMap<u64, (String, oneshot::Sender<Result<Value>>)>| {
        for (_, (_, reply)) in pending.drain() {
            let _ = reply.send(Err(Error::Disconnected));
        }
    };
    let mut keepalive = tokio::time::interval(config.keepalive);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    keepalive.tick().await;
    let mut ping_id = u64::MAX;
    loop {
        tokio::select! {
            call = calls.recv() => {
                let Some(call) = call else {
                    let _ = ws.close(None).await;
                    fail_all(&mut pending);
                    return SessionEnd::Shutdown;
                };
                if call.reply.is_closed() {
                    continue; // timed out while queued
                }
                let text = call.message.to_json();
                pending.insert(call.message.id, (call.message.method.clone(), call.reply));
                if let Err(e) = ws.send(tungstenite::Message::text(text)).await {
                    fail_all(&mut pending);
                    return SessionEnd::Dropped(e.to_string());
                }
                keepalive.reset();
            }
            frame = ws.next() => {
                let frame = match frame {
                    None => { fail_all(&mut pending); return SessionEnd::Dropped("closed by the node".into()); }
                    Some(Err(e)) => { fail_all(&mut pending); return SessionEnd::Dropped(e.to_string()); }
                    Some(Ok(frame)) => frame,
                };
                match frame {
                    tungstenite::Message::Text(text) => match Message::from_json(&text) {
                        Ok(m) if m.id == ping_id => {}
                        Ok(m) => match m.kind {
                            Kind::Response | Kind::Error => {
                                let Some((method, reply)) = pending.remove(&m.id) else {
                                    debug!(target: "beatstream::yellow", id = m.id, method = %m.method, "answer to no pending request");
                                    continue;
                                };
                                let result = match m.error_text() {
                                    Some(text) => Err(Error::Node(NodeError::new(method, text))),
                                    None => Ok(m.payload),
                                };
                                let _ = reply.send(result);
                            }
                            Kind::Event => debug!(target: "beatstream::yellow", method = %m.method, "event ignored"),
                            Kind::Request => {
                                // The node does not call clients; answer so it is never left waiting.
                                let answer = Message::error(m.id, m.method, "client does not serve requests");
                                if let Err(e) = ws.send(tungstenite::Message::text(answer.to_json())).await {
                                    fail_all(&mut pending);
                                    return SessionEnd::Dropped(e.to_string());
                                }
                            }
                        },
                        Err(e) => warn!(target: "beatstream::yellow", error = %e, "undecodable frame from the node"),
                    },
                    tungstenite::Message::Ping(_) => {
                        // tungstenite queued the pong; flush it now rather than with the next write.
                        if let Err(e) = ws.flush().await {
                            fail_all(&mut pending);
                            return SessionEnd::Dropped(e.to_string());
                        }
                    }
                    tungstenite::Message::Close(_) => {
                        fail_all(&mut pending);
                        return SessionEnd::Dropped("closed by the node".into());
                    }
                    _ => {}
                }
            }
            _ = keepalive.tick() => {
                ping_id = ping_id.wrapping_sub(1).max(u64::MAX / 2);
                let ping = Message::request(ping_id, PING, serde_json::json!({}));
                if let Err(e) = ws.send(tungstenite::Message::text(ping.to_json())).await {
                    fail_all(&mut pending);
                    return SessionEnd::Dropped(e.to_string());
                }
            }
        }
    }
}
