//! HTTP surface: the WebSocket endpoint `/ws/stream`, `/health` and `/metrics`. Only this module knows about
//! WebSocket; it adapts axum's socket to the transport-agnostic [`crate::conn::serve`].

use std::{future::ready, sync::Arc, time::Duration};

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

async fn health(State(state): State<AppState>) -> Response {
    let db =
        tokio::time::timeout(Duration::from_secs(2), crate::db::ping(state.relay.store.pool()))
            .await;
    let body = |status: &str| {
        serde_json::json!({
            "status": status,
            "relayId": state.relay.relay_id,
            "connections": state.relay.metrics.connections.get(),
            "sessions": state.relay.metrics.sessions_live.get() + state.relay.metrics.sessions_paused.get(),
        })
    };
    match db {
        Ok(Ok(_)) if !state.relay.shutdown.is_cancelled() => {
            (StatusCode::OK, Json(body("ok"))).into_response()
        }
        Ok(Ok(_)) => (StatusCode::SERVICE_UNAVAILABLE, Json(body("shutting_down"))).into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, Json(body("database_unavailable"))).into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.relay.metrics.render())
        .into_response()
}
