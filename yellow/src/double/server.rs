//! The WebSocket server: accepts the RPC path, pings, drops peers that stop ponging, and answers each request
//! frame from the node state.

use super::*;

pub(super) async fn accept_loop(
    listener: TcpListener,
    state: Arc<Mutex<State>>,
    mut stopped: watch::Receiver<bool>,
) {
    let for_connections = stopped.clone();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopping(&mut stopped) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, state.clone(), for_connections.clone()));
                }
                Err(e) => debug!(target: "beatstream::yellow::double", error = %e, "accept failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Resolves once the double stops (or is dropped).
pub(super) async fn stopping(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Accepts only the RPC path, and an `app_id` query parameter only if it is a valid application id (the node
/// answers HTTP 400).
#[allow(clippy::result_large_err, reason = "the signature of tungstenite's handshake callback")]
pub(super) fn check_request(
    request: &Request,
    response: Response,
) -> Result<Response, ErrorResponse> {
    let reject = |status: StatusCode, why: &str| {
        let mut refusal = ErrorResponse::new(Some(why.to_owned()));
        *refusal.status_mut() = status;
        refusal
    };
    if request.uri().path() != WS_PATH {
        return Err(reject(StatusCode::NOT_FOUND, "not found"));
    }
    let app_id = request
        .uri()
        .query()
        .into_iter()
        .flat_map(|query| query.split('&'))
        .find_map(|pair| pair.strip_prefix("app_id="));
    if let Some(app_id) = app_id
        && !is_application_id(app_id)
    {
        return Err(reject(StatusCode::BAD_REQUEST, "invalid app_id"));
    }
    Ok(response)
}

pub(super) async fn connection(
    stream: TcpStream,
    state: Arc<Mutex<State>>,
    mut stopped: watch::Receiver<bool>,
) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(stream, check_request, Some(config));
    let mut ws = tokio::select! {
        ws = handshake => match ws {
            Ok(ws) => ws,
            Err(e) => {
                debug!(target: "beatstream::yellow::double", error = %e, "handshake failed");
                return;
            }
        },
        _ = stopping(&mut stopped) => return,
    };
    let close = |code: CloseCode, reason: &str| Some(CloseFrame { code, reason: reason.into() });
    let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let pong_deadline = tokio::time::sleep(PONG_TIMEOUT);
    tokio::pin!(pong_deadline);
    loop {
        tokio::select! {
            _ = stopping(&mut stopped) => {
                let _ = ws.close(close(CloseCode::Away, "node stopping")).await;
                return;
            }
            _ = ping.tick() => {
                if ws.send(Frame::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            _ = &mut pong_deadline => {
                let _ = ws.close(close(CloseCode::Policy, "no pong")).await;
                return;
            }
            frame = ws.next() => {
                let text = match frame {
                    None => return,
                    Some(Ok(Frame::Text(text))) => text.as_str().to_owned(),
                    // The node reads every data frame the same way.
                    Some(Ok(Frame::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
                    Some(Ok(Frame::Pong(_))) => {
                        pong_deadline.as_mut().reset(Instant::now() + PONG_TIMEOUT);
                        continue;
                    }
                    // Pongs to pings and the reply to a close are queued by tungstenite and flushed on the next
                    // read; a closed peer ends the stream.
                    Some(Ok(_)) => continue,
                    Some(Err(tungstenite::Error::Capacity(e))) => {
                        debug!(target: "beatstream::yellow::double", error = %e, "frame too big");
                        let _ = ws.close(close(CloseCode::Size, "message too big")).await;
                        drain(ws.get_ref()).await;
                        return;
                    }
                    Some(Err(e)) => {
                        debug!(target: "beatstream::yellow::double", error = %e, "connection failed");
                        return;
                    }
                };
                let answer = answer(&state, &text);
                if ws.send(Frame::text(answer)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads and drops what the peer still sends, for up to a second or until it closes: closing a socket with unread
/// data (the rest of a refused frame) resets the connection, and the peer could lose the close frame.
pub(super) async fn drain(stream: &TcpStream) {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut sink = vec![0u8; 16 * 1024];
    while let Ok(Ok(())) = tokio::time::timeout_at(deadline, stream.readable()).await {
        match stream.try_read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// The answer frame to one request frame.
pub(super) fn answer(state: &Mutex<State>, text: &str) -> String {
    let (id, method, payload) = match parse_envelope(text) {
        Ok(request) => request,
        Err(id) => return Message::error(id, "", "invalid message format").to_json(),
    };
    let result = lock(state).call(&method, payload);
    match result {
        Ok(payload) => Message::response(id, method, payload),
        Err(message) => Message::error(id, method, message),
    }
    .to_json()
}

/// `[type, id, method, payload, ts]` with an object payload; on failure, the request id if it was read (the node
/// decodes the elements in order), else 0. Neither the type nor the timestamp is checked beyond decoding, as on
/// the node.
pub(super) fn parse_envelope(text: &str) -> Result<(u64, String, Value), u64> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) else { return Err(0) };
    let Ok([kind, id, method, payload, ts]) = <[Value; 5]>::try_from(items) else { return Err(0) };
    serde_json::from_value::<u8>(kind).map_err(|_| 0u64)?;
    let id = serde_json::from_value::<u64>(id).map_err(|_| 0u64)?;
    let method = serde_json::from_value::<String>(method).map_err(|_| id)?;
    if !payload.is_object() {
        return Err(id);
    }
    serde_json::from_value::<u64>(ts).map_err(|_| id)?;
    Ok((id, method, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_checked_in_order() {
        assert_eq!(parse_envelope("nope"), Err(0));
        assert_eq!(parse_envelope(r#"[1,7,"m",{}]"#), Err(0));
        assert_eq!(parse_envelope(r#"["x",7,"m",{},1]"#), Err(0));
        assert_eq!(parse_envelope(r#"[1,7,"m",[],1]"#), Err(7));
        assert_eq!(parse_envelope(r#"[1,7,3,{},1]"#), Err(7));
        assert_eq!(parse_envelope(r#"[1,7,"m",{"a":1},1]"#), Ok((7, "m".into(), json!({"a":1}))));
    }
}
