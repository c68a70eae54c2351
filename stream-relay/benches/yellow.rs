//! Yellow submission benchmark: does submitting every stored update to the node, one
//! `app_sessions.v1.submit_app_state` per update in version order, keep up, or does the relay need to batch?
//!
//! Two parts, both against the in-process nitronode double (`beatstream_yellow::double::Double`: the v1 envelope,
//! the node's version, quorum, signature and conservation rules, real secp256k1 signatures; not the real node, whose
//! costs differ):
//!
//! 1. **Ceiling of the node path.** A raw `beatstream_yellow::Client` (one WebSocket, as the relay has) submits
//!    operate updates to the double, every one signed by the listener and co-signed by the operator **before** the
//!    timed window: (a) one app session, strictly sequential (latency per request, requests/s); (b) 64 app sessions
//!    concurrently on the same client, each still in version order (total states/s). The sessions are created and
//!    funded first (`Double::credit`, `Double::user_state`).
//! 2. **Through the relay.** A relay in this process (`Server::bind`, beat 1 s, the default 10 s submit grace) over a
//!    fresh Postgres database seeded as the tests seed it, pointed at a fresh double. N players
//!    (`BEATSTREAM_BENCH_YELLOW_SESSIONS`, default 500) each connect, send `yellowOpen` (at most 16 opens in flight)
//!    and answer every `beat` with the next signed `yellowUpdate` (pre-signed before the run, so the figures are the
//!    relay's and the node's, not the players' signing). After the last open, 3 s of warm-up, then a window of
//!    `BEATSTREAM_BENCH_YELLOW_SECS` (default 20) in which every ack is timed from the update's send to the ack's
//!    receipt. At the window's end the players stop sending updates (they keep their connections), and the run
//!    measures how long the node and the relay's bookkeeping take to catch up.
//!
//!    **Node lag** is measured by polling the double: a sampler thread reads `Double::session(id).version` every
//!    20 ms for up to 64 sessions and times each acked update from its ack's receipt until the node holds its
//!    version (resolution 20 ms; an update the node took before the player saw its ack counts as the first poll
//!    after the ack). The relay's own `beatstream_relay_yellow_submit_lag_seconds` histogram (stored → accepted,
//!    every session) is scraped from `/metrics` as a cross-check. **Backlog** is
//!    `SELECT sum(version - submitted) FROM yellow_app_sessions`: states stored and acked but not yet recorded as
//!    accepted by the node.
//!
//! Everything (relay, double, players) runs in this one process on the machine's cores, with Postgres beside it.
//! Run: `make bench-yellow` (or `cargo bench -p beatstream-stream-relay --bench yellow`). Prints numbers and a
//! verdict; asserts nothing.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering},
        mpsc as std_mpsc,
    },
    time::Duration,
};

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    signers::local::PrivateKeySigner,
};
use beatstream_stream_relay::{
    Config, Server,
    protocol::{ClientFrame, ServerFrame, Uint, YellowDeposit},
};
use beatstream_testkit::TestDb;
use beatstream_yellow::{
    Allocation, Amount, AppDefinition, AppStateUpdate, Client, ClientConfig, Intent, Participant,
    QuorumSig, SignerKind, U64String,
    double::{Double, DoubleConfig},
    methods::{CreateAppSession, SubmitAppState, SubmitDepositState},
};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use sqlx::PgPool;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::Semaphore,
    time::Instant,
};
use tokio_tungstenite::{
    connect_async_with_config,
    tungstenite::{Message, protocol::WebSocketConfig},
};
use tokio_util::sync::CancellationToken;

const CHAIN_ID: u64 = 31337;
const ASSET: &str = "usdc";
const DECIMALS: u8 = 6;
const APP_ID: &str = "beatstream";
const SESSION_DATA: &str = r#"{"app":"beatstream"}"#;
/// Every artist's rate, in base units per second (tracks use the artist's rate).
const RATE: u64 = 100;
/// Artists (each with one 600 s track) the players are spread over.
const ARTISTS: usize = 4;
/// Updates in the sequential ceiling run, and per session in the concurrent one.
const SEQUENTIAL_UPDATES: u64 = 2000;
const CONCURRENT_SESSIONS: usize = 64;
const CONCURRENT_UPDATES: u64 = 100;
/// `yellowOpen`s in flight at once during the ramp-up.
const OPENS_IN_FLIGHT: usize = 16;
const WARMUP: Duration = Duration::from_secs(3);
/// Sessions whose node lag the sampler follows, and how often it polls the double.
const SAMPLED_SESSIONS: usize = 64;
const POLL: Duration = Duration::from_millis(20);
/// The relay's default `--yellow-submit-grace-secs`: an acked update waiting longer pauses its session.
const SUBMIT_GRACE: Duration = Duration::from_secs(10);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn usdc(units: u64) -> Amount {
    Amount::from_base_units(U256::from(units), DECIMALS)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn new_hist() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is valid")
}

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let sessions = env_or("BEATSTREAM_BENCH_YELLOW_SESSIONS", 500).max(1) as usize;
    let secs = env_or("BEATSTREAM_BENCH_YELLOW_SECS", 20).max(1);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("\n# Yellow: submitting every update to the node ({cpus} CPUs)");
    ceiling(cpus).await?;
    through_relay(sessions, secs, cpus).await
}

// ----- Listeners and their signed states. -----

/// A listener paying `payee` through one app session with the relay's operator; its wallet signs every state.
struct Listener {
    wallet: PrivateKeySigner,
    definition: AppDefinition,
    /// The deposit, in base units.
    deposit: u64,
}

impl Listener {
    fn new(operator: Address, payee: Address, nonce: u64, deposit: u64) -> Self {
        let wallet = PrivateKeySigner::random();
        let definition = AppDefinition {
            application_id: APP_ID.into(),
            participants: vec![
                Participant { wallet_address: wallet.address(), signature_weight: 1 },
                Participant { wallet_address: operator, signature_weight: 1 },
                Participant { wallet_address: payee, signature_weight: 0 },
            ],
            quorum: 2,
            nonce: U64String(nonce),
        };
        Self { wallet, definition, deposit }
    }

    fn address(&self) -> Address {
        self.wallet.address()
    }

    fn id(&self) -> B256 {
        self.definition.session_id()
    }

    /// The state at `version` in which the artist holds `paid` base units of the deposit.
    fn state(&self, intent: Intent, version: u64, paid: u64) -> AppStateUpdate {
        let [listener, operator, payee] =
            [0, 1, 2].map(|i| self.definition.participants[i].wallet_address);
        let allocation = |participant, units| Allocation {
            participant,
            asset: ASSET.into(),
            amount: usdc(units),
        };
        AppStateUpdate {
            app_session_id: self.id(),
            intent,
            version: U64String(version),
            allocations: vec![
                allocation(listener, self.deposit - paid),
                allocation(operator, 0),
                allocation(payee, paid),
            ],
            session_data: String::new(),
        }
    }

    /// The per-second update paying `paid` in total.
    fn operate(&self, version: u64, paid: u64) -> AppStateUpdate {
        self.state(Intent::Operate, version, paid)
    }

    fn sign(&self, hash: B256) -> QuorumSig {
        QuorumSig::sign(&self.wallet, SignerKind::Wallet, hash)
    }
}

fn sig_hex(sig: &QuorumSig) -> String {
    alloy::hex::encode_prefixed(sig.to_bytes())
}

/// `f` over `items` on every core (order kept); for the pre-signing before a timed window.
fn par_map<T: Sync, R: Send>(items: &[T], cpus: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let chunk = items.len().div_ceil(cpus.max(1)).max(1);
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let f = &f;
            let parts: Vec<_> = items
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
                .collect();
            parts.into_iter().flat_map(|p| p.join().expect("signing thread panicked")).collect()
        })
    })
}

// ----- Part 1: the node path's ceiling. -----

async fn ceiling(cpus: usize) -> eyre::Result<()> {
    let double = Double::start(DoubleConfig::default()).await?;
    let client = Client::spawn(ClientConfig::new(double.url()));
    client.wait_connected(Duration::from_secs(5)).await?;
    let operator = PrivateKeySigner::random();
    let payee = Address::repeat_byte(0x10);
    let deposit = 1_000_000; // 1 USDC: room for 10,000 seconds at the rate
    let listeners: Vec<Listener> = (0..=CONCURRENT_SESSIONS)
        .map(|i| Listener::new(operator.address(), payee, i as u64 + 1, deposit))
        .collect();
    for l in &listeners {
        double.credit(l.address(), ASSET, usdc(2 * deposit));
        open_on_node(&client, &operator, l).await?;
    }

    // Pre-sign: listener and operator signatures over every update, on every core.
    let mut jobs: Vec<(usize, u64)> = (1..=SEQUENTIAL_UPDATES).map(|k| (0, k)).collect();
    for i in 1..=CONCURRENT_SESSIONS {
        jobs.extend((1..=CONCURRENT_UPDATES).map(|k| (i, k)));
    }
    let started = Instant::now();
    let signed: Vec<SubmitAppState> = par_map(&jobs, cpus, |&(i, k)| {
        let update = listeners[i].operate(2 + k, RATE * k);
        let hash = update.hash();
        SubmitAppState {
            quorum_sigs: vec![
                listeners[i].sign(hash),
                QuorumSig::sign(&operator, SignerKind::Wallet, hash),
            ],
            app_state_update: update,
        }
    });
    let took = started.elapsed();
    let signatures = 2 * jobs.len();
    println!(
        "\n## Ceiling: `Client` → double, `submit_app_state`, one WebSocket, pre-signed\n\n\
         Pre-signing {signatures} quorum signatures (alloy/k256, as the relay co-signs each update) took \
         {:.2} s on {cpus} threads: {:.0} signatures/s per core.\n",
        took.as_secs_f64(),
        signatures as f64 / took.as_secs_f64() / cpus as f64
    );
    let mut signed = signed.into_iter();
    let sequential: Vec<SubmitAppState> =
        signed.by_ref().take(SEQUENTIAL_UPDATES as usize).collect();
    let concurrent: Vec<Vec<SubmitAppState>> = (0..CONCURRENT_SESSIONS)
        .map(|_| signed.by_ref().take(CONCURRENT_UPDATES as usize).collect())
        .collect();

    println!("| run | sessions | states | states/s | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    // (a) One session, each request waiting for the previous answer.
    let mut hist = new_hist();
    let started = Instant::now();
    for req in &sequential {
        let t = Instant::now();
        client.submit_app_state(req).await?;
        hist.record(t.elapsed().as_micros() as u64)?;
    }
    let rate = sequential.len() as f64 / started.elapsed().as_secs_f64();
    print_ceiling_row("(a) sequential, one session", 1, sequential.len(), rate, &hist);

    // (b) 64 sessions at once on the same client, each in version order.
    let started = Instant::now();
    let tasks: Vec<_> = concurrent
        .into_iter()
        .map(|reqs| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut hist = new_hist();
                for req in &reqs {
                    let t = Instant::now();
                    client.submit_app_state(req).await?;
                    hist.record(t.elapsed().as_micros() as u64)?;
                }
                eyre::Ok(hist)
            })
        })
        .collect();
    let mut hist = new_hist();
    for task in tasks {
        hist.add(task.await??)?;
    }
    let rate = hist.len() as f64 / started.elapsed().as_secs_f64();
    print_ceiling_row(
        "(b) concurrent, each session in order",
        CONCURRENT_SESSIONS,
        hist.len() as usize,
        rate,
        &hist,
    );
    // Every state landed.
    for (i, l) in listeners.iter().enumerate() {
        let want = 2 + if i == 0 { SEQUENTIAL_UPDATES } else { CONCURRENT_UPDATES };
        let got = double.session(l.id()).map(|s| s.version);
        eyre::ensure!(got == Some(want), "session {i}: node at {got:?}, expected {want}");
    }
    Ok(())
}

fn print_ceiling_row(label: &str, sessions: usize, states: usize, rate: f64, h: &Histogram<u64>) {
    println!(
        "| {label} | {sessions} | {states} | {rate:.0} | {:.2} | {:.2} | {:.2} |",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max())
    );
}

/// Creates `l`'s app session on the node (listener and operator signing) and deposits into it.
async fn open_on_node(
    client: &Client,
    operator: &PrivateKeySigner,
    l: &Listener,
) -> eyre::Result<()> {
    let cosign = |hash| QuorumSig::sign(operator, SignerKind::Wallet, hash);
    let hash = l.definition.creation_hash(SESSION_DATA);
    client
        .create_app_session(&CreateAppSession {
            definition: l.definition.clone(),
            session_data: SESSION_DATA.into(),
            quorum_sigs: vec![l.sign(hash), cosign(hash)],
        })
        .await?;
    let deposit = l.state(Intent::Deposit, 2, 0);
    let hash = deposit.hash();
    client
        .submit_deposit_state(&SubmitDepositState {
            quorum_sigs: vec![l.sign(hash), cosign(hash)],
            user_state: Double::user_state(l.address(), l.id(), ASSET, usdc(l.deposit)),
            app_state_update: deposit,
        })
        .await?;
    Ok(())
}

// ----- Part 2: through the relay. -----

/// One player's pre-signed frames: the open, then the update (and its close's signature) for each second.
struct Plan {
    listener: Listener,
    track: u64,
    open: String,
    /// Second k (from 1) at index k - 1: (update at version 2 + k paying `RATE * k`, sig, closeSig).
    updates: Vec<(AppStateUpdate, String, String)>,
}

impl Plan {
    fn new(listener: Listener, track: u64, seconds: u64) -> Self {
        let deposit = listener.state(Intent::Deposit, 2, 0);
        let close = listener.state(Intent::Close, 3, 0);
        let open = ClientFrame::YellowOpen {
            track_id: Uint(track.to_string()),
            definition: listener.definition.clone(),
            session_data: SESSION_DATA.into(),
            create_sig: sig_hex(&listener.sign(listener.definition.creation_hash(SESSION_DATA))),
            deposit: YellowDeposit {
                sig: sig_hex(&listener.sign(deposit.hash())),
                close_sig: sig_hex(&listener.sign(close.hash())),
                user_state: Double::user_state(
                    listener.address(),
                    listener.id(),
                    ASSET,
                    usdc(listener.deposit),
                ),
                update: deposit,
            },
        }
        .to_json();
        let updates =
            (1..=seconds).map(|k| Self::sign_update(&listener, 2 + k, RATE * k)).collect();
        Self { listener, track, open, updates }
    }

    fn sign_update(l: &Listener, version: u64, paid: u64) -> (AppStateUpdate, String, String) {
        let update = l.operate(version, paid);
        let close = l.state(Intent::Close, version + 1, paid);
        let (sig, close_sig) = (sig_hex(&l.sign(update.hash())), sig_hex(&l.sign(close.hash())));
        (update, sig, close_sig)
    }

    /// The `yellowUpdate` paying `owed` at `version`: pre-signed when the relay's beats went as planned.
    fn update_frame(&self, session: &str, second: u32, version: u64, owed: u64) -> String {
        let second = u64::from(second);
        let as_planned = version == 2 + second && owed == RATE * second;
        let planned =
            second.checked_sub(1).and_then(|i| self.updates.get(i as usize)).filter(|_| as_planned);
        let signed;
        let (update, sig, close_sig) = match planned {
            Some(p) => p,
            None => {
                signed = Self::sign_update(&self.listener, version, owed);
                &signed
            }
        };
        ClientFrame::YellowUpdate {
            session_id: session.into(),
            update: update.clone(),
            sig: sig.clone(),
            close_sig: close_sig.clone(),
        }
        .to_json()
    }
}

/// What the players share with the run.
#[derive(Clone)]
struct Shared {
    url: String,
    ramp: Arc<Semaphore>,
    opened: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    /// Updates sent and not yet acked (or refused), over all players.
    outstanding: Arc<AtomicI64>,
    /// Players stop answering beats (and keep their connections).
    stop_updates: CancellationToken,
    /// Players close their connections.
    disconnect: CancellationToken,
}

/// What one player saw.
#[derive(Default)]
struct PlayerStats {
    open_sent: Option<Instant>,
    opened: Option<Instant>,
    open_retries: u32,
    /// (ack received, send → ack in µs).
    acks: Vec<(Instant, u64)>,
    last_send: Option<Instant>,
    paused: u32,
    errors: Vec<String>,
    /// The connection ended before the run did.
    dropped: Option<String>,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> eyre::Result<Ws> {
    let mut last = None;
    for attempt in 0..5u64 {
        // A 4 KiB read buffer (tungstenite zero-fills the whole buffer per read) and Nagle off, as the players of
        // `beatstream simulate`.
        let config = WebSocketConfig::default().read_buffer_size(4096);
        match connect_async_with_config(url, Some(config), true).await {
            Ok((ws, _)) => return Ok(ws),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
    }
    Err(last.expect("attempted").into())
}

async fn player(
    plan: Arc<Plan>,
    shared: Shared,
    sample: Option<std_mpsc::Sender<(B256, u64, Instant)>>,
) -> eyre::Result<PlayerStats> {
    let mut stats = PlayerStats::default();
    let opened = open(&plan, &shared, &mut stats).await;
    let (mut ws, session) = match opened {
        Ok(ok) => ok,
        Err(e) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
    };
    shared.opened.fetch_add(1, Ordering::Relaxed);

    let id = plan.listener.id();
    let mut version = 2u64;
    // (paid, version, sent) of updates awaiting their ack, in order.
    let mut pending: VecDeque<(u64, u64, Instant)> = VecDeque::new();
    let mut keepalive = tokio::time::interval(Duration::from_secs(5));
    loop {
        let frame = tokio::select! {
            _ = shared.disconnect.cancelled() => break,
            _ = keepalive.tick() => {
                // Once the updates stop, pings keep the relay's idle timeout away.
                if shared.stop_updates.is_cancelled() {
                    ws.send(Message::Ping(Default::default())).await?;
                }
                continue;
            }
            frame = ws.next() => frame,
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(c))) => {
                stats.dropped = Some(format!("closed by the relay: {c:?}"));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                stats.dropped = Some(e.to_string());
                break;
            }
            None => {
                stats.dropped = Some("connection ended".into());
                break;
            }
        };
        match serde_json::from_str::<ServerFrame>(text.as_str())? {
            ServerFrame::Beat { second, owed, .. } if !shared.stop_updates.is_cancelled() => {
                let owed: u64 = owed.parse()?;
                version += 1;
                let frame = plan.update_frame(&session, second, version, owed);
                let sent = Instant::now();
                ws.send(Message::text(frame)).await?;
                pending.push_back((owed, version, sent));
                shared.outstanding.fetch_add(1, Ordering::Relaxed);
                stats.last_send = Some(sent);
            }
            ServerFrame::Ack { cumulative, .. } => {
                let now = Instant::now();
                let cumulative: u64 = cumulative.parse()?;
                while let Some(&(paid, v, sent)) = pending.front() {
                    if paid > cumulative {
                        break;
                    }
                    pending.pop_front();
                    shared.outstanding.fetch_sub(1, Ordering::Relaxed);
                    if paid == cumulative {
                        stats.acks.push((now, now.duration_since(sent).as_micros() as u64));
                        if let Some(tx) = &sample {
                            let _ = tx.send((id, v, now));
                        }
                    }
                }
            }
            ServerFrame::Paused { .. } => stats.paused += 1,
            ServerFrame::Error { code, message } => {
                // Not expected: the update will not be acked; stop counting it.
                stats.errors.push(format!("{code}: {message}"));
                shared.outstanding.fetch_sub(pending.len() as i64, Ordering::Relaxed);
                pending.clear();
            }
            ServerFrame::Closed { .. } => {
                stats.dropped = Some("session closed by the relay".into());
                break;
            }
            _ => {}
        }
    }
    shared.outstanding.fetch_sub(pending.len() as i64, Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    Ok(stats)
}

/// Connects and opens the app session (retrying what the protocol says may be retried); returns the connection
/// and the relay's session id.
async fn open(plan: &Plan, shared: &Shared, stats: &mut PlayerStats) -> eyre::Result<(Ws, String)> {
    let _permit = shared.ramp.acquire().await?;
    let mut ws = connect(&shared.url).await?;
    for attempt in 0..10u64 {
        let sent = Instant::now();
        stats.open_sent.get_or_insert(sent);
        ws.send(Message::text(plan.open.clone())).await?;
        loop {
            let text = match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => text,
                Ok(Some(Ok(Message::Close(c)))) => eyre::bail!("closed during the open: {c:?}"),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => return Err(e.into()),
                Ok(None) => eyre::bail!("connection ended during the open"),
                Err(_) => eyre::bail!("no answer to yellowOpen in 30 s"),
            };
            match serde_json::from_str::<ServerFrame>(text.as_str())? {
                ServerFrame::Session { session_id, app_session_id, .. } => {
                    let id = plan.listener.id().to_string();
                    eyre::ensure!(
                        app_session_id.as_ref() == Some(&id),
                        "opened {app_session_id:?}"
                    );
                    stats.opened = Some(Instant::now());
                    return Ok((ws, session_id));
                }
                ServerFrame::Error { code, .. }
                    if code == "node_unavailable" || code == "storage_unavailable" =>
                {
                    stats.open_retries += 1;
                    tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                    break;
                }
                ServerFrame::Error { code, message } => {
                    eyre::bail!("yellowOpen of track {} refused: {code}: {message}", plan.track)
                }
                _ => {}
            }
        }
    }
    eyre::bail!("yellowOpen still unavailable after 10 attempts")
}

/// Artists `artist0..` (payee `0x1010…`, `0x1111…`, …; rate [`RATE`]) with one published 600 s track each (ids from
/// 1, the artist's rate), as `harness.rs` seeds them; returns the payees.
async fn seed(pool: &PgPool) -> eyre::Result<Vec<Address>> {
    let mut payees = Vec::new();
    for i in 0..ARTISTS {
        let label = format!("artist{i}");
        let node = keccak256(label.as_bytes());
        let payee = Address::repeat_byte(0x10 + i as u8);
        sqlx::query(
            "INSERT INTO artists (chain_id, node, label, name, owner, addr, rate_per_second, registered_at,
                                  registered_block, updated_block)
             VALUES ($1, $2, $3, $4, $5, $5, $6::numeric, now(), 1, 1)",
        )
        .bind(CHAIN_ID as i64)
        .bind(node.as_slice())
        .bind(&label)
        .bind(format!("{label}.beatstream.eth"))
        .bind(payee.as_slice())
        .bind(RATE.to_string())
        .execute(pool)
        .await?;
        let track = i as u64 + 1;
        sqlx::query(
            "INSERT INTO tracks (chain_id, track_id, artist_node, title, duration, rate_per_second, content_hash,
                                 metadata_uri, published, published_at, updated_block)
             VALUES ($1, $2::numeric, $3, $4, 600, 0, $5, 'ipfs://track', true, now(), 1)",
        )
        .bind(CHAIN_ID as i64)
        .bind(track.to_string())
        .bind(node.as_slice())
        .bind(format!("track {track}"))
        .bind(keccak256(track.to_be_bytes()).as_slice())
        .execute(pool)
        .await?;
        payees.push(payee);
    }
    Ok(payees)
}

async fn backlog(pool: &PgPool) -> eyre::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(sum(version - submitted), 0)::bigint FROM yellow_app_sessions",
    )
    .fetch_one(pool)
    .await?)
}

/// CPU time of this process and busy time of the whole machine, in seconds (Linux `/proc`; zero elsewhere).
fn cpu_times() -> (f64, f64) {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let process = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are the 14th and 15th of the line.
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?)
        })
        .unwrap_or(0.0);
    let machine = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?;
            let v: Vec<f64> =
                line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
            // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
            Some(v.iter().take(8).sum::<f64>() - v.get(3)? - v.get(4)?)
        })
        .unwrap_or(0.0);
    (process / tick, machine / tick)
}

/// The relay's `/metrics` text.
async fn scrape_metrics(addr: SocketAddr) -> eyre::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n").await?;
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut body)).await??;
    Ok(body.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or(body))
}

/// The value of the sample line `name` (exact, labels included).
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Follows sampled sessions on the double: for each acked (session, version, ack time) it is sent, the time from
/// the ack until the node holds that version. Runs on its own thread (the double's state is behind a mutex that
/// is held while it verifies signatures; polling must not block the runtime's workers).
fn node_lag_sampler(
    double: Double,
    acked: std_mpsc::Receiver<(B256, u64, Instant)>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(Vec<(Instant, Duration)>, usize)> {
    std::thread::spawn(move || {
        let mut waiting: HashMap<B256, VecDeque<(u64, Instant)>> = HashMap::new();
        let mut lags = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(POLL);
            while let Ok((id, version, at)) = acked.try_recv() {
                waiting.entry(id).or_default().push_back((version, at));
            }
            for (id, queue) in waiting.iter_mut().filter(|(_, q)| !q.is_empty()) {
                let on_node = double.session(*id).map_or(0, |s| s.version);
                let now = Instant::now();
                while queue.front().is_some_and(|(v, _)| *v <= on_node) {
                    let (_, at) = queue.pop_front().expect("checked");
                    lags.push((at, now.saturating_duration_since(at)));
                }
            }
        }
        (lags, waiting.values().map(VecDeque::len).sum())
    })
}

async fn through_relay(n: usize, secs: u64, cpus: usize) -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let pool = db.pool().clone();
    let payees = seed(&pool).await?;
    let double = Double::start(DoubleConfig::default()).await?;
    let operator = PrivateKeySigner::random();

    let mut config = Config::new(db.url().to_owned(), "http://127.0.0.1:1".parse::<url::Url>()?);
    config.options.listen = "127.0.0.1:0".parse()?;
    config.chain_id = Some(CHAIN_ID);
    config.vault = Some(Address::repeat_byte(0xaa));
    config.options.beat_ms = 1000;
    // Measure the node path, not the pausing: nothing pauses for vouchers behind or closes for errors.
    config.options.grace_beats = 1_000_000;
    config.options.max_errors = 1_000_000;
    config.options.yellow.yellow_url = Some(double.url());
    config.options.yellow.yellow_operator_key = Some(alloy::hex::encode(operator.to_bytes()));
    eyre::ensure!(
        config.options.yellow.yellow_submit_grace_secs == SUBMIT_GRACE.as_secs(),
        "the relay's default submit grace changed; update SUBMIT_GRACE"
    );
    let relay_stop = CancellationToken::new();
    let server = Server::bind(config, relay_stop.clone()).await?;
    let addr = server.local_addr()?;
    let relay = tokio::spawn(server.serve());

    // Every player's frames, signed before anything is timed: enough seconds for the ramp, warm-up and window.
    let seconds = WARMUP.as_secs() + secs + 30;
    let deposit = 500_000; // 0.5 USDC: 5,000 seconds at the rate
    let started = Instant::now();
    let listeners: Vec<(usize, u64)> = (0..n).map(|i| (i, i as u64 + 1)).collect();
    let plans: Vec<Arc<Plan>> = par_map(&listeners, cpus, |&(i, nonce)| {
        let listener = Listener::new(operator.address(), payees[i % ARTISTS], nonce, deposit);
        Arc::new(Plan::new(listener, (i % ARTISTS) as u64 + 1, seconds))
    });
    for p in &plans {
        double.credit(p.listener.address(), ASSET, usdc(2 * deposit));
    }
    println!(
        "\n## Through the relay: {n} Yellow players, 1 update/s each, {secs} s window\n\n\
         Pre-signed {} frames ({} signatures) in {:.1} s.",
        n as u64 * (seconds + 1),
        n as u64 * (3 + 2 * seconds),
        started.elapsed().as_secs_f64()
    );

    let shared = Shared {
        url: format!("ws://{addr}/ws/stream"),
        ramp: Arc::new(Semaphore::new(OPENS_IN_FLIGHT)),
        opened: Arc::default(),
        failed: Arc::default(),
        outstanding: Arc::default(),
        stop_updates: CancellationToken::new(),
        disconnect: CancellationToken::new(),
    };
    let (sample_tx, sample_rx) = std_mpsc::channel();
    let sampler_stop = Arc::new(AtomicBool::new(false));
    let sampler = node_lag_sampler(double.clone(), sample_rx, sampler_stop.clone());
    let every = n.div_ceil(SAMPLED_SESSIONS).max(1);
    let sampled: Vec<B256> = plans.iter().step_by(every).map(|p| p.listener.id()).collect();

    // Ramp-up: every player connects and opens, at most OPENS_IN_FLIGHT at a time.
    let ramp_started = Instant::now();
    let players: Vec<_> = plans
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            let tx = (i % every == 0).then(|| sample_tx.clone());
            tokio::spawn(player(plan.clone(), shared.clone(), tx))
        })
        .collect();
    drop(sample_tx);
    let ramp_deadline = ramp_started + Duration::from_secs(300);
    while shared.opened.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed) < n {
        eyre::ensure!(Instant::now() < ramp_deadline, "the ramp-up took over 300 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ramp_done = Instant::now();
    let opened = shared.opened.load(Ordering::Relaxed);
    eyre::ensure!(opened > 0, "no player could open an app session");

    // Warm-up, then the window; the backlog is read every half second meanwhile.
    let window_start = ramp_done + WARMUP;
    let window_end = window_start + Duration::from_secs(secs);
    tokio::time::sleep_until(window_start).await;
    let cpu_start = cpu_times();
    let mut backlog_max = 0;
    while Instant::now() < window_end {
        backlog_max = backlog_max.max(backlog(&pool).await?);
        tokio::time::sleep(Duration::from_millis(500).min(window_end - Instant::now())).await;
    }
    shared.stop_updates.cancel();
    let stopped = Instant::now();
    let cpu_end = cpu_times();
    let backlog_at_end = backlog(&pool).await?;

    // Catch-up: the last acks arrive, then the node and the relay's bookkeeping take everything stored.
    let drain_deadline = stopped + Duration::from_secs(30);
    while shared.outstanding.load(Ordering::Relaxed) > 0 && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let acks_drained = Instant::now();
    let unacked = shared.outstanding.load(Ordering::Relaxed);
    let stored: Arc<Vec<(Vec<u8>, i64)>> = Arc::new(
        sqlx::query_as("SELECT app_session_id, version FROM yellow_app_sessions")
            .fetch_all(&pool)
            .await?,
    );
    let (mut node_caught, mut relay_caught) = (None, None);
    let catch_deadline = Instant::now() + Duration::from_secs(120);
    while (node_caught.is_none() || relay_caught.is_none()) && Instant::now() < catch_deadline {
        if node_caught.is_none() {
            let (double, stored) = (double.clone(), stored.clone());
            let behind = tokio::task::spawn_blocking(move || {
                stored
                    .iter()
                    .filter(|(id, v)| {
                        double.session(B256::from_slice(id)).map_or(0, |s| s.version) < *v as u64
                    })
                    .count()
            })
            .await?;
            if behind == 0 {
                node_caught = Some(Instant::now());
            }
        }
        if relay_caught.is_none() && backlog(&pool).await? == 0 {
            relay_caught = Some(Instant::now());
        }
        tokio::time::sleep(POLL).await;
    }
    let metrics = scrape_metrics(addr).await.unwrap_or_default();

    // Wind down: players disconnect (the relay closes their sessions and app sessions), the relay stops.
    shared.disconnect.cancel();
    let mut stats = Vec::new();
    let mut player_failures = Vec::new();
    for p in players {
        match p.await? {
            Ok(s) => stats.push(s),
            Err(e) => player_failures.push(e.to_string()),
        }
    }
    sampler_stop.store(true, Ordering::Relaxed);
    let (node_lags, unresolved) = sampler.join().map_err(|_| eyre::eyre!("sampler panicked"))?;
    relay_stop.cancel();
    match tokio::time::timeout(Duration::from_secs(30), relay).await {
        Ok(result) => result??,
        Err(_) => eprintln!("warning: the relay did not stop within 30 s"),
    }

    // ----- Report. -----
    let mut open_hist = new_hist();
    for s in &stats {
        if let (Some(a), Some(b)) = (s.open_sent, s.opened) {
            open_hist.record(b.duration_since(a).as_micros() as u64)?;
        }
    }
    let first_open = stats.iter().filter_map(|s| s.open_sent).min().unwrap_or(ramp_started);
    let last_open = stats.iter().filter_map(|s| s.opened).max().unwrap_or(ramp_done);
    let ramp_secs = last_open.duration_since(first_open).as_secs_f64().max(1e-3);
    let in_window = |t: Instant| t >= window_start && t < window_end;
    let mut ack_hist = new_hist();
    for (at, us) in stats.iter().flat_map(|s| &s.acks) {
        if in_window(*at) {
            ack_hist.record(*us)?;
        }
    }
    let mut lag_hist = new_hist();
    for (at, lag) in &node_lags {
        if in_window(*at) {
            lag_hist.record(lag.as_micros() as u64)?;
        }
    }
    let last_update = stats.iter().filter_map(|s| s.last_send).max().unwrap_or(stopped);
    let after_last = |t: Option<Instant>| {
        t.map_or("not within 120 s".to_owned(), |t| {
            format!("{:.2} s", t.saturating_duration_since(last_update).as_secs_f64())
        })
    };
    let errors: Vec<&String> = stats.iter().flat_map(|s| &s.errors).collect();
    let paused: u32 = stats.iter().map(|s| s.paused).sum();
    let dropped = stats.iter().filter(|s| s.dropped.is_some()).count();
    let retries: u32 = stats.iter().map(|s| s.open_retries).sum();
    let acked_per_sec = ack_hist.len() as f64 / secs as f64;
    let process_cores = (cpu_end.0 - cpu_start.0) / secs as f64;
    let machine_cores = (cpu_end.1 - cpu_start.1) / secs as f64;

    println!("\n| measure | value |");
    println!("|---|---|");
    println!(
        "| sessions opened | {opened} of {n} in {ramp_secs:.2} s: **{:.0} opens/s** ({OPENS_IN_FLIGHT} in flight; {retries} retried) |",
        opened as f64 / ramp_secs
    );
    println!(
        "| open latency (send → `session`: 3 recoveries, create + deposit on the node, commit) | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms |",
        ms(open_hist.value_at_quantile(0.5)),
        ms(open_hist.value_at_quantile(0.99)),
        ms(open_hist.max())
    );
    println!(
        "| updates acked in the window | {} in {secs} s: **{acked_per_sec:.0} /s** (expected {opened}/s) |",
        ack_hist.len()
    );
    println!(
        "| ack latency (send → ack) | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms |",
        ms(ack_hist.value_at_quantile(0.5)),
        ms(ack_hist.value_at_quantile(0.99)),
        ms(ack_hist.max())
    );
    println!(
        "| node lag (ack → the double holds the version; polled every {} ms, {} sessions sampled, {} updates) | **p50 {:.0} ms, p99 {:.0} ms**, max {:.0} ms |",
        POLL.as_millis(),
        sampled.len(),
        lag_hist.len(),
        ms(lag_hist.value_at_quantile(0.5)),
        ms(lag_hist.value_at_quantile(0.99)),
        ms(lag_hist.max())
    );
    let lag_name = "beatstream_relay_yellow_submit_lag_seconds";
    let lag_count = metric(&metrics, &format!("{lag_name}_count")).unwrap_or(0.0);
    let share = |le: &str| {
        let v = metric(&metrics, &format!("{lag_name}_bucket{{le=\"{le}\"}}")).unwrap_or(0.0);
        100.0 * v / lag_count.max(1.0)
    };
    println!(
        "| relay's `{lag_name}` (stored → accepted, every session, whole run: {lag_count:.0} states) | ≤ 0.1 s {:.1}%, ≤ 0.5 s {:.1}%, ≤ 1 s {:.1}%, ≤ 5 s {:.1}% |",
        share("0.1"),
        share("0.5"),
        share("1"),
        share("5")
    );
    println!(
        "| backlog (Σ version − submitted) | max {backlog_max} during the window (read every 0.5 s), {backlog_at_end} at its end |"
    );
    println!(
        "| caught up after the last update | node: {}, relay's `submitted`: {} (last acks {:.2} s after it{}) |",
        after_last(node_caught),
        after_last(relay_caught),
        acks_drained.saturating_duration_since(last_update).as_secs_f64(),
        if unacked > 0 { format!(", {unacked} never acked") } else { String::new() }
    );
    println!(
        "| CPU in the window (cores) | this process (relay + double + players) {process_cores:.2}, whole machine {machine_cores:.2} of {cpus} |"
    );
    println!(
        "| node submissions (relay's counters) | {:.0} operate accepted; errors: {:.0} unavailable, {:.0} version, {:.0} refused |",
        metric(&metrics, "beatstream_relay_yellow_submitted_total{intent=\"operate\"}")
            .unwrap_or(0.0),
        metric(&metrics, "beatstream_relay_yellow_submit_errors_total{kind=\"unavailable\"}")
            .unwrap_or(0.0),
        metric(&metrics, "beatstream_relay_yellow_submit_errors_total{kind=\"version\"}")
            .unwrap_or(0.0),
        metric(&metrics, "beatstream_relay_yellow_submit_errors_total{kind=\"refused\"}")
            .unwrap_or(0.0),
    );
    println!(
        "| players | {} errors, {paused} pauses, {dropped} dropped connections, {} failed to open; {unresolved} sampled updates never seen on the node |",
        errors.len(),
        player_failures.len()
    );
    for e in errors.iter().take(5) {
        println!("\nplayer error: {e}");
    }
    for e in player_failures.iter().take(5) {
        println!("\nplayer failure: {e}");
    }

    // Verdict: the node lag must stay well under the grace after which sessions pause, the backlog must drain.
    let lag_p99 = Duration::from_micros(lag_hist.value_at_quantile(0.99));
    let drained = relay_caught.zip(node_caught).is_some();
    let mut problems = Vec::new();
    if lag_hist.is_empty() {
        problems.push("no node lag was measured".to_owned());
    }
    if lag_p99 > SUBMIT_GRACE / 10 {
        problems.push(format!(
            "node lag p99 {lag_p99:.1?} is not well under the {SUBMIT_GRACE:?} grace"
        ));
    }
    if !drained {
        problems.push("the backlog did not drain within 120 s".into());
    }
    if acked_per_sec < 0.95 * opened as f64 {
        problems.push(format!("only {acked_per_sec:.0} of {opened} updates/s were acked"));
    }
    if opened < n || !errors.is_empty() || paused > 0 || dropped > 0 {
        problems.push("players failed, erred, paused or dropped".into());
    }
    if problems.is_empty() {
        println!(
            "\nVERDICT: per-update submission keeps up at {opened} sessions ({acked_per_sec:.0} updates/s) on {cpus} CPUs: \
             node lag p99 {:.0} ms, well under the {} s submit grace; the backlog drained {} after the last update.",
            lag_p99.as_secs_f64() * 1000.0,
            SUBMIT_GRACE.as_secs(),
            after_last(relay_caught)
        );
    } else {
        println!(
            "\nVERDICT: per-update submission does NOT keep up at {n} sessions on {cpus} CPUs: {}.",
            problems.join("; ")
        );
    }
    Ok(())
}
