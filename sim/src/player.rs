//! One worker process's players: connect at a steady ramp, hello, play, and answer every beat with a voucher signed
//! ahead of time, timing each ack.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use alloy::primitives::{Address, U256};
use beatstream_primitives::VoucherDomain;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use secp256k1::Secp256k1;
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::{
    connect_async_with_config,
    tungstenite::{Message, protocol::WebSocketConfig},
};
use url::Url;

use beatstream_stream_relay::protocol::{ClientFrame, ServerFrame, Uint};

use crate::{
    Error, Result,
    keys::Identity,
    report::{WorkerStats, histogram},
};

/// Client socket settings: a small read buffer (tungstenite zero-fills all of it on every read); Nagle is turned
/// off where the socket is opened.
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(beatstream_stream_relay::ws::READ_BUFFER)
}

/// What every player of a worker shares.
struct Shared {
    domain: VoucherDomain,
    window_start: Instant,
    window_end: Instant,
    hist: Mutex<Histogram<u64>>,
    acks: AtomicU64,
    paused: AtomicU64,
    sessions: AtomicUsize,
    errors: Mutex<BTreeMap<String, u64>>,
    /// Per player, milliseconds after the window start of its last ack.
    last_ack: Vec<AtomicU64>,
    /// For quiet sessions, the beat: players pay each second on their own clock.
    quiet: Option<Duration>,
}

impl Shared {
    fn error(&self, code: &str) {
        *self.errors.lock().expect("not poisoned").entry(code.to_owned()).or_insert(0) += 1;
    }
}

/// A player ready to run: identity, relay, and vouchers signed ahead for `payee` at `rate`.
pub struct Prepared {
    identity: Identity,
    relay: Url,
    payee: Address,
    rate: U256,
    /// Signatures of cumulative `rate × n` for n = 1, 2, ...
    presigned: Vec<[u8; 65]>,
}

/// Signs `beats` vouchers ahead for each identity, on every core.
pub fn prepare(
    identities: Vec<(Identity, Url)>,
    domain: &VoucherDomain,
    payee: Address,
    rate: U256,
    beats: usize,
) -> Vec<Prepared> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = identities.len().div_ceil(threads).max(1);
    let mut out: Vec<Prepared> = Vec::with_capacity(identities.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = identities
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let secp = Secp256k1::signing_only();
                    part.iter()
                        .map(|(identity, relay)| Prepared {
                            presigned: (1..=beats as u64)
                                .map(|n| {
                                    identity.sign_voucher(
                                        &secp,
                                        domain,
                                        payee,
                                        rate * U256::from(n),
                                    )
                                })
                                .collect(),
                            identity: identity.clone(),
                            relay: relay.clone(),
                            payee,
                            rate,
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            out.extend(h.join().expect("signing thread"));
        }
    });
    out
}

/// Learns the track's payee and rate by playing it once with `identity` (which then pays nothing).
pub async fn probe(relay: &Url, identity: &Identity, track_id: u64) -> Result<(Address, U256)> {
    let fail = |e: String| Error::Simulate(format!("probing {relay}: {e}"));
    let (mut ws, _) = connect_async_with_config(relay.as_str(), Some(ws_config()), true)
        .await
        .map_err(|e| fail(e.to_string()))?;
    ws.send(Message::text(ClientFrame::hello(&identity.grant, &identity.grant_sig).to_json()))
        .await
        .map_err(|e| fail(e.to_string()))?;
    ws.send(Message::text(
        ClientFrame::Play { track_id: Uint(track_id.to_string()), from: None, beats: None }
            .to_json(),
    ))
    .await
    .map_err(|e| fail(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let msg = timeout_at(deadline, ws.next())
            .await
            .map_err(|_| fail("no session within 10 s".into()))?
            .ok_or_else(|| fail("closed".into()))?
            .map_err(|e| fail(e.to_string()))?;
        let Message::Text(text) = msg else { continue };
        match serde_json::from_str::<ServerFrame>(text.as_str()) {
            Ok(ServerFrame::Session { session_id, payee, rate_per_second, .. }) => {
                let stop = ClientFrame::Stop { session_id };
                let _ = ws.send(Message::text(stop.to_json())).await;
                let _ = ws.close(None).await;
                let payee = payee.parse().map_err(|_| fail("bad payee".into()))?;
                let rate = rate_per_second.parse().map_err(|_| fail("bad rate".into()))?;
                return Ok((payee, rate));
            }
            Ok(ServerFrame::Error { code, message }) => {
                return Err(fail(format!("{code}: {message}")));
            }
            _ => {}
        }
    }
}

/// Runs the prepared players: player `i` starts at `go + i / ramp_per_sec`; acks are measured from `warmup`
/// after the last start for `duration`; `quiet` is the beat of quiet sessions.
#[expect(
    clippy::too_many_arguments,
    reason = "the run's parameters, each used once, named at the call"
)]
pub async fn run(
    players: Vec<Prepared>,
    domain: VoucherDomain,
    track_id: u64,
    go: Instant,
    ramp_per_sec: f64,
    warmup: Duration,
    duration: Duration,
    quiet: Option<Duration>,
) -> WorkerStats {
    let n = players.len();
    let ramp = Duration::from_secs_f64(n as f64 / ramp_per_sec);
    let window_start = go + ramp + warmup;
    let window_end = window_start + duration;
    let shared = Arc::new(Shared {
        domain,
        window_start,
        window_end,
        hist: Mutex::new(histogram()),
        acks: AtomicU64::new(0),
        paused: AtomicU64::new(0),
        sessions: AtomicUsize::new(0),
        errors: Mutex::new(BTreeMap::new()),
        last_ack: (0..n).map(|_| AtomicU64::new(0)).collect(),
        quiet,
    });
    let tasks: Vec<_> = players
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let shared = shared.clone();
            let start = go + Duration::from_secs_f64(i as f64 / ramp_per_sec);
            tokio::spawn(async move {
                tokio::time::sleep_until(start).await;
                if let Err(code) = play(&shared, i, p, track_id).await {
                    shared.error(&code);
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let held_since = (duration.as_millis() as u64).saturating_sub(2_000);
    let hist = shared.hist.lock().expect("not poisoned");
    WorkerStats {
        players: n,
        sessions: shared.sessions.load(Ordering::Relaxed),
        held: shared.last_ack.iter().filter(|t| t.load(Ordering::Relaxed) > held_since).count(),
        acks: shared.acks.load(Ordering::Relaxed),
        window_secs: duration.as_secs_f64(),
        latency_us: hist
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect(),
        errors: shared.errors.lock().expect("not poisoned").clone(),
        paused: shared.paused.load(Ordering::Relaxed),
    }
}

/// The voucher for `owed`: signed ahead of the run when it is a whole number of seconds, else now.
fn voucher_for(
    p: &Prepared,
    shared: &Shared,
    secp: &Secp256k1<secp256k1::SignOnly>,
    owed: U256,
) -> ClientFrame {
    let step = (owed / p.rate).to::<u64>();
    let sig = match p.presigned.get(step.wrapping_sub(1) as usize) {
        Some(sig) if owed % p.rate == U256::ZERO => *sig,
        _ => p.identity.sign_voucher(secp, &shared.domain, p.payee, owed),
    };
    ClientFrame::voucher(p.identity.grant_id, p.payee, owed, &sig)
}

/// The next protocol frame, `None` once `until` passes; an `Err` is the code to count.
async fn next_frame<S>(
    ws: &mut S,
    until: Instant,
) -> std::result::Result<Option<ServerFrame>, String>
where
    S: futures_util::Stream<
            Item = std::result::Result<Message, tokio_tungstenite::tungstenite::Error>,
        > + Unpin,
{
    loop {
        let msg = match timeout_at(until, ws.next()).await {
            Err(_) => return Ok(None),
            Ok(None) => return Err("disconnected".into()),
            Ok(Some(Err(_))) => return Err("socket_error".into()),
            Ok(Some(Ok(msg))) => msg,
        };
        match msg {
            Message::Text(text) => {
                return serde_json::from_str(text.as_str())
                    .map(Some)
                    .map_err(|_| "bad_frame_from_relay".into());
            }
            Message::Close(_) => return Err("closed_by_relay".into()),
            _ => {}
        }
    }
}

/// One player's whole run; an `Err` is the code to count.
async fn play(
    shared: &Shared,
    index: usize,
    p: Prepared,
    track_id: u64,
) -> std::result::Result<(), String> {
    let (mut ws, _) = connect_async_with_config(p.relay.as_str(), Some(ws_config()), true)
        .await
        .map_err(|_| "connect_failed".to_owned())?;
    let send = |frame: ClientFrame| Message::text(frame.to_json());
    // hello, then play, each retried while the relay says it may be (storage or chain briefly unavailable).
    let hello = send(ClientFrame::hello(&p.identity.grant, &p.identity.grant_sig));
    let play = send(ClientFrame::Play {
        track_id: Uint(track_id.to_string()),
        from: None,
        beats: shared.quiet.map(|_| false),
    });
    for request in [hello, play] {
        let mut attempts = 0;
        loop {
            ws.send(request.clone()).await.map_err(|_| "send_failed".to_owned())?;
            match next_frame(&mut ws, shared.window_end).await? {
                Some(ServerFrame::Ready { .. }) => break,
                Some(ServerFrame::Session { .. }) => {
                    shared.sessions.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Some(ServerFrame::Error { code, .. })
                    if attempts < 20
                        && (code == "storage_unavailable" || code == "chain_unavailable") =>
                {
                    attempts += 1;
                    shared.error(&format!("{code}_retried"));
                    tokio::time::sleep(Duration::from_millis(500 + (index as u64 * 37) % 1000))
                        .await;
                }
                Some(ServerFrame::Error { code, .. }) => return Err(code),
                Some(_) => {}
                None => return Ok(()),
            }
        }
    }
    let secp = Secp256k1::signing_only();
    // When each voucher was sent, by cumulative step modulo the ring size.
    let mut sent_at: [Option<(u64, Instant)>; 16] = [None; 16];
    // A quiet session's clock: the next second to pay and when.
    let mut next_pay: Option<(U256, Instant)> = None;
    loop {
        let due = next_pay.map_or(shared.window_end, |(_, at)| at.min(shared.window_end));
        let next = tokio::select! {
            next = timeout_at(shared.window_end, ws.next()) => next,
            () = tokio::time::sleep_until(due), if next_pay.is_some() => {
                let (owed, at) = next_pay.take().expect("checked by the guard");
                if at >= shared.window_end {
                    break;
                }
                let voucher = voucher_for(&p, shared, &secp, owed);
                sent_at[(owed / p.rate).to::<u64>() as usize % 16] =
                    Some(((owed / p.rate).to::<u64>(), Instant::now()));
                ws.send(send(voucher)).await.map_err(|_| "send_failed".to_owned())?;
                next_pay = shared.quiet.map(|beat| (owed + p.rate, at + beat));
                continue;
            }
        };
        let msg = match next {
            Err(_) => break,
            Ok(None) => return Err("disconnected".into()),
            Ok(Some(Err(_))) => return Err("socket_error".into()),
            Ok(Some(Ok(msg))) => msg,
        };
        let text = match msg {
            Message::Text(text) => text,
            Message::Close(_) => return Err("closed_by_relay".into()),
            _ => continue,
        };
        let Ok(frame) = serde_json::from_str::<ServerFrame>(text.as_str()) else {
            return Err("bad_frame_from_relay".into());
        };
        match frame {
            ServerFrame::Beat { owed, .. } => {
                let owed: U256 = owed.parse().map_err(|_| "bad_owed".to_owned())?;
                let step = (owed / p.rate).to::<u64>();
                let voucher = voucher_for(&p, shared, &secp, owed);
                sent_at[step as usize % 16] = Some((step, Instant::now()));
                ws.send(send(voucher)).await.map_err(|_| "send_failed".to_owned())?;
                // A quiet session's beats (its first, and the first after a resume) set the player's clock.
                next_pay = shared.quiet.map(|beat| (owed + p.rate, Instant::now() + beat));
            }
            ServerFrame::Ack { cumulative, .. } => {
                let cumulative: U256 = cumulative.parse().map_err(|_| "bad_ack".to_owned())?;
                let step = (cumulative / p.rate).to::<u64>();
                let now = Instant::now();
                if let Some((s, at)) = sent_at[step as usize % 16].take()
                    && s == step
                    && now >= shared.window_start
                {
                    let us = now.duration_since(at).as_micros() as u64;
                    let _ = shared.hist.lock().expect("not poisoned").record(us.max(1));
                    shared.acks.fetch_add(1, Ordering::Relaxed);
                    let ms = now.duration_since(shared.window_start).as_millis() as u64;
                    shared.last_ack[index].store(ms.max(1), Ordering::Relaxed);
                }
            }
            ServerFrame::Session { .. } => {}
            ServerFrame::Paused { .. } => {
                shared.paused.fetch_add(1, Ordering::Relaxed);
                // A quiet player waits for the beat that resumes it.
                next_pay = None;
            }
            ServerFrame::Error { code, .. } => shared.error(&code),
            ServerFrame::Ready { .. } | ServerFrame::Closed { .. } | ServerFrame::TipAck { .. } => {
            }
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}
