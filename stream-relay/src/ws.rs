//! HTTP surface: the WebSocket endpoint `/ws/stream`, `/health`, `/ready` and `/metrics`. Only this module knows
//! about WebSocket; it adapts axum's socket to the transport-agnostic [`crate::conn::serve`].

use std::{future::ready, sync::Arc};

use axum::{
    Json, Router,
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket},
    },
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use beatstream_primitives::health::{Check, Readiness};
use futures_util::{SinkExt, StreamExt};
use tokio_util::task::TaskTracker;

use crate::{
    conn::{self, Inbound, Outbound},
    relay::Relay,
};

/// Read buffer of a WebSocket (see [`upgrade`]).
pub const READ_BUFFER: usize = 4096;

/// Shared by the handlers.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub(crate) relay: Arc<Relay>,
    pub(crate) tracker: TaskTracker,
    pub(crate) max_connections: usize,
}

/// The relay's routes.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/ws/stream", get(upgrade))
        .route("/health", get(health))
        .route("/ready", get(readiness))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    if state.relay.metrics.connections.get() as usize >= state.max_connections
        || state.relay.shutdown.is_cancelled()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "relay is full or shutting down").into_response();
    }
    // Frames above the soft limit get an `error` and the connection lives; above this hard limit the WebSocket
    // layer closes it (1009) without buffering more.
    let hard_limit = (state.relay.limits.max_frame_bytes * 16).max(64 * 1024);
    let tracker = state.tracker.clone();
    // tungstenite zero-fills its whole read buffer before every read: at the default 128 KiB that memset was 30%
    // of the relay's CPU. Frames are small; the buffer still grows for a larger one.
    ws.read_buffer_size(READ_BUFFER)
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_upgrade(move |socket| tracker.track_future(handle(socket, state.relay)))
}

async fn handle(socket: WebSocket, relay: Arc<Relay>) {
    let (sink, stream) = socket.split();
    let inbound = stream
        .take_while(|m| ready(matches!(m, Ok(m) if !matches!(m, Message::Close(_)))))
        .filter_map(|m| {
            ready(match m {
                Ok(Message::Text(text)) => Some(Inbound::Text(text.as_str().to_owned())),
                Ok(Message::Binary(bytes)) => Some(Inbound::Binary(bytes.len())),
                Ok(Message::Ping(_) | Message::Pong(_)) => Some(Inbound::Alive),
                _ => None,
            })
        });
    let outbound = sink.with(|item: Outbound| {
        ready(Ok::<_, axum::Error>(match item {
            Outbound::Frame(frame) => Message::Text(frame.to_json().into()),
            Outbound::Close { code, reason } => {
                Message::Close(Some(CloseFrame { code, reason: reason.into() }))
            }
        }))
    });
    conn::serve(relay, inbound, outbound).await;
}

/// Liveness: `{"status": "ok", "relayId", "connections", "sessions"}`, or 503 `"shutting_down"` once the relay
/// stops taking connections. Cheap: Postgres is `/ready`'s business.
async fn health(State(state): State<AppState>) -> Response {
    let relay = &state.relay;
    let stopping = relay.shutdown.is_cancelled();
    let body = Json(serde_json::json!({
        "status": if stopping { "shutting_down" } else { "ok" },
        "relayId": relay.relay_id,
        "connections": relay.metrics.connections.get(),
        "sessions": relay.metrics.sessions_live.get() + relay.metrics.sessions_paused.get(),
    }));
    let status = if stopping { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (status, body).into_response()
}

/// Readiness: Postgres answers (every voucher is stored before its ack), and the relay takes connections (not
/// shutting down, not at `--relay-max-connections`). The RPC endpoint is left out: the relay asks it only about smart-wallet
/// grants, and taking every relay out of service when it is down would stop the listeners it does not concern.
async fn readiness(State(state): State<AppState>) -> Response {
    let relay = &state.relay;
    let database = Check::run("database", crate::db::ping(relay.store.pool())).await;
    let open = relay.metrics.connections.get() as usize;
    let accepting = if relay.shutdown.is_cancelled() {
        Check::fail("accepting", "shutting down")
    } else if open >= state.max_connections {
        Check::fail("accepting", format!("full: {open} connections (--relay-max-connections)"))
    } else {
        Check::pass_with("accepting", format!("{open} of {} connections", state.max_connections))
    };
    let readiness = Readiness::new(vec![database, accepting]);
    let status = StatusCode::from_u16(readiness.status()).expect("200 or 503");
    (status, Json(readiness.to_json())).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.relay.metrics.render())
        .into_response()
}
