//! An in-process nitronode double for tests: a WebSocket server on `127.0.0.1` that speaks the v1 envelope and
//! enforces the node's app-session rules, with the node's error texts.
//!
//! The rules and texts come from the layer-3/nitrolite Go sources (`nitronode/api/app_session_v1`, `pkg/app`,
//! `pkg/rpc`): checks run in the node's order and a refused request changes nothing. Where the node's text embeds a
//! library error (a Go `strconv` or hex-decoding message), the part after the node's own prefix is this double's
//! wording.
//!
//! What the double deliberately does not do:
//!
//! - **No channel states.** A wallet's "home channel" and balance are set by [`Double::credit`], standing in for an
//!   on-chain deposit. `submit_deposit_state` checks the `user_state` fields the app-session rules depend on (the
//!   `commit` transition, its account id and amount, the asset, the wallet's channel and balance) but **does not
//!   verify the channel-state signature or the state's ledger arithmetic**: BeatStream forwards the player's
//!   `user_state` opaquely and the real node checks it. Released funds (withdraw, close) are added to the
//!   receiver's [`Double::balance`]; the receiver needs no channel, as on the node.
//! - **No app registry.** Any application id that matches the id pattern is accepted, as on a node with the
//!   registry off; `owner_sig` is ignored.
//! - **No rate limits, session-key caps or action allowances.**
//!
//! Where the stored upstream versions disagree, the double picks one and says so at the rule.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt, io,
    net::{Ipv4Addr, SocketAddr},
    str::FromStr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use alloy::{
    primitives::{Address, B256, Signature, U256, eip191_hash_message, keccak256},
    signers::local::PrivateKeySigner,
    sol_types::{SolType, sol_data},
};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tokio::{
    net::{TcpListener, TcpSocket, TcpStream},
    sync::watch,
    task::{JoinHandle, JoinSet},
    time::Instant,
};
use tokio_tungstenite::tungstenite::{
    self, Message as Frame,
    handshake::server::{ErrorResponse, Request, Response},
    http::StatusCode,
    protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
};
use tracing::debug;
use url::Url;

use crate::{
    Allocation, Amount, AppDefinition, AppSessionKeyState, KeySigError, Participant, U64String,
    methods,
    rpc::{MAX_FRAME_BYTES, Message},
};

/// How often the double sends a WebSocket ping (the node's `defaultWsConnPingInterval`).
pub const PING_INTERVAL: Duration = Duration::from_secs(5);
/// A connection that sends no pong for this long is dropped (the node's `defaultWsConnPongTimeout`; only pongs
/// count, not requests).
pub const PONG_TIMEOUT: Duration = Duration::from_secs(10);
/// What `node.v1.get_config` reports as `node_version`.
pub const NODE_VERSION: &str = "double-v1.4.1";

/// The RPC endpoint's path.
const WS_PATH: &str = "/v1/ws";
/// Application ids (and the `?app_id=` query parameter) must match this.
const APPLICATION_ID_PATTERN: &str = "^[a-z0-9_-]{1,66}$";
/// `supported_sig_validators`: Go writes a `[]uint8` as base64; this is `[0x00, 0x01]`. 0x00 is the default
/// EIP-191 channel signer; 0x01 (assumed to be the channel session-key signer) was not confirmed upstream.
const SIG_VALIDATORS: &str = "AAE=";
/// Default and largest page of `get_app_sessions` and `get_last_key_states` (upstream's `GetLastKeyStatesPageLimit`;
/// the `get_app_sessions` default is assumed equal).
const PAGE_LIMIT: u32 = 10;
/// Amounts with more integer digits are refused as unparsable, so sums and comparisons of amounts never overflow
/// (the node's decimals are unbounded; no real amount comes near).
const MAX_INTEGER_DIGITS: i64 = 30;
/// Fraction digits the double can hold ([`crate::amount::MAX_SCALE`]).
const MAX_FRACTION_DIGITS: i64 = crate::amount::MAX_SCALE as i64;

/// What the double serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoubleConfig {
    /// Asset symbols and their decimals (lookups are exact and case-sensitive, as on the node).
    pub assets: Vec<(String, u8)>,
    /// Longest `session_data`, in bytes (the node's `MaxSessionDataLen`; prod 1024).
    pub max_session_data: usize,
    /// Most participants per app session (the node's `MaxParticipants`; prod 32).
    pub max_participants: usize,
}

impl Default for DoubleConfig {
    /// `usdc` with 6 decimals, 1024 bytes of session data, 32 participants.
    fn default() -> Self {
        Self { assets: vec![("usdc".into(), 6)], max_session_data: 1024, max_participants: 32 }
    }
}

/// An app session as the double holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionView {
    /// The definition, participant addresses normalized.
    pub definition: AppDefinition,
    /// Current version (1 after creation, plus one per accepted update).
    pub version: u64,
    /// `"open"` or `"closed"`.
    pub status: String,
    /// Every participant/asset with a ledger entry, zero amounts included, sorted by asset then participant.
    pub allocations: Vec<Allocation>,
    /// Current application data.
    pub session_data: String,
}

/// A running nitronode double; clones share it. Dropping the last clone stops it.
#[derive(Clone)]
pub struct Double {
    state: Arc<Mutex<State>>,
    server: Arc<Mutex<Option<Server>>>,
    port: u16,
}

/// The accept loop while the double is up.
struct Server {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Double {
    /// Starts a double on a free port of `127.0.0.1`.
    pub async fn start(config: DoubleConfig) -> io::Result<Double> {
        let listener = bind(0)?;
        let port = listener.local_addr()?.port();
        let double = Double {
            state: Arc::new(Mutex::new(State::new(config))),
            server: Arc::new(Mutex::new(None)),
            port,
        };
        double.serve(listener);
        Ok(double)
    }

    /// `ws://127.0.0.1:{port}/v1/ws`.
    pub fn url(&self) -> Url {
        Url::parse(&format!("ws://127.0.0.1:{}{WS_PATH}", self.port)).expect("a valid URL")
    }

    /// The node goes away: stops accepting and closes every open connection (close code 1001). State is kept.
    pub async fn stop(&self) {
        let server = lock(&self.server).take();
        if let Some(server) = server {
            let _ = server.stop.send(true);
            let _ = server.task.await;
        }
    }

    /// Accepts connections again on the same port, with the same state; does nothing if already running.
    pub async fn restart(&self) -> io::Result<()> {
        if lock(&self.server).is_some() {
            return Ok(());
        }
        self.serve(bind(self.port)?);
        Ok(())
    }

    /// Funds `wallet` with `amount` of `asset` and gives it an active home channel for that asset (stands in for an
    /// on-chain deposit).
    pub fn credit(&self, wallet: Address, asset: &str, amount: Amount) {
        let mut state = lock(&self.state);
        state.add_balance(wallet, asset, amount);
        state.wallets.entry((wallet, asset.to_owned())).or_default().channel = true;
    }

    /// What `user.v1.get_balances` reports for `wallet` and `asset` (zero if never funded).
    pub fn balance(&self, wallet: Address, asset: &str) -> Amount {
        lock(&self.state).balance(wallet, asset)
    }

    /// The app session `id`, if it was created.
    pub fn session(&self, id: B256) -> Option<SessionView> {
        lock(&self.state).sessions.get(&id).map(Session::view)
    }

    /// Answers the next `count` requests of `method` with an error carrying `message`, without applying them.
    pub fn fail_next(&self, method: &str, message: &str, count: usize) {
        let mut state = lock(&self.state);
        if count == 0 {
            state.failures.remove(method);
        } else {
            state.failures.insert(method.to_owned(), (message.to_owned(), count));
        }
    }

    /// How many requests of `method` succeeded.
    pub fn accepted(&self, method: &str) -> usize {
        lock(&self.state).accepted.get(method).copied().unwrap_or(0)
    }

    /// The `user_state` a deposit of `amount` of `asset` by `wallet` into `app_session_id` carries: a channel state
    /// (`StateV1`) whose last transition is a `commit` to the session. Fields the double does not check (ids,
    /// ledgers, signature) are placeholders.
    pub fn user_state(wallet: Address, app_session_id: B256, asset: &str, amount: Amount) -> Value {
        let zero = hex(B256::ZERO);
        json!({
            "id": zero,
            "transition": {
                "type": "commit",
                "tx_id": zero,
                "account_id": hex(app_session_id),
                "amount": amount.to_string(),
            },
            "asset": asset,
            "user_wallet": hex(wallet),
            "epoch": "0",
            "version": "1",
            "home_channel_id": zero,
            "home_ledger": {
                "token_address": hex(Address::ZERO),
                "blockchain_id": "1",
                "user_balance": "0",
                "user_net_flow": "0",
                "node_balance": "0",
                "node_net_flow": "0",
            },
            // A channel signature is a signer-type byte and 65 bytes.
            "user_sig": zero_sig(66),
        })
    }

    fn serve(&self, listener: TcpListener) {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, self.state.clone(), stopped));
        *lock(&self.server) = Some(Server { stop, task });
    }
}

/// A listener on `127.0.0.1:port` that can be re-bound right after it closes.
fn bind(port: u16) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    socket.listen(1024)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Lower-case `0x` hex, as the node writes addresses and ids.
fn hex(bytes: impl AsRef<[u8]>) -> String {
    alloy::hex::encode_prefixed(bytes)
}

fn zero_sig(len: usize) -> String {
    format!("0x{}", "00".repeat(len))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

// ---------------------------------------------------------------------------------------------------------------
// WebSocket server.
// ---------------------------------------------------------------------------------------------------------------

async fn accept_loop(
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
async fn stopping(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Accepts only the RPC path, and an `app_id` query parameter only if it is a valid application id (the node
/// answers HTTP 400).
#[allow(clippy::result_large_err, reason = "the signature of tungstenite's handshake callback")]
fn check_request(request: &Request, response: Response) -> Result<Response, ErrorResponse> {
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

async fn connection(
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
async fn drain(stream: &TcpStream) {
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
fn answer(state: &Mutex<State>, text: &str) -> String {
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
fn parse_envelope(text: &str) -> Result<(u64, String, Value), u64> {
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

// ---------------------------------------------------------------------------------------------------------------
// Node state and methods.
// ---------------------------------------------------------------------------------------------------------------

struct State {
    config: DoubleConfig,
    node_address: Address,
    sessions: HashMap<B256, Session>,
    /// Session ids in creation order.
    created: Vec<B256>,
    wallets: HashMap<(Address, String), Wallet>,
    /// The latest state of each app session key (a key belongs to one wallet).
    keys: HashMap<Address, KeyEntry>,
    /// Orders key states by submission.
    key_counter: u64,
    failures: HashMap<String, (String, usize)>,
    accepted: HashMap<String, usize>,
}

#[derive(Default)]
struct Wallet {
    balance: Amount,
    /// An active home channel for this asset.
    channel: bool,
}

struct KeyEntry {
    state: AppSessionKeyState,
    submitted: u64,
}

struct Session {
    definition: AppDefinition,
    version: u64,
    open: bool,
    /// Holdings by (asset, participant); an entry stays once written, even at zero, like the node's ledger sums.
    ledger: BTreeMap<(String, Address), Amount>,
    session_data: String,
}

/// The outcome of an accepted update, applied only once every check passed.
struct Plan {
    ledger: BTreeMap<(String, Address), Amount>,
    /// Funds leaving the session, to each participant's balance.
    releases: Vec<(Address, String, Amount)>,
    close: bool,
}

impl Session {
    fn view(&self) -> SessionView {
        SessionView {
            definition: self.definition.clone(),
            version: self.version,
            status: self.status().into(),
            allocations: self
                .ledger
                .iter()
                .map(|((asset, participant), amount)| Allocation {
                    participant: *participant,
                    asset: asset.clone(),
                    amount: *amount,
                })
                .collect(),
            session_data: self.session_data.clone(),
        }
    }

    fn status(&self) -> &'static str {
        if self.open { "open" } else { "closed" }
    }

    /// The participant an allocation names: the node compares the lower-cased string with the lower-case `0x`
    /// form of each participant.
    fn member(&self, participant: &str) -> Option<Address> {
        self.definition
            .participants
            .iter()
            .map(|p| p.wallet_address)
            .find(|wallet| hex(wallet) == participant)
    }

    fn amount(&self, participant: Address, asset: &str) -> Amount {
        self.ledger.get(&(asset.to_owned(), participant)).copied().unwrap_or(Amount::ZERO)
    }

    /// Non-zero holdings by participant, then asset (the node's order where it sorts).
    fn holdings(&self) -> Vec<(Address, &str, Amount)> {
        let mut held: Vec<_> = self
            .ledger
            .iter()
            .filter(|(_, amount)| !amount.is_zero())
            .map(|((asset, participant), amount)| (*participant, asset.as_str(), *amount))
            .collect();
        held.sort();
        held
    }

    /// Per-asset totals.
    fn balances(&self) -> BTreeMap<&str, Amount> {
        let mut totals = BTreeMap::new();
        for ((asset, _), amount) in &self.ledger {
            let total: &mut Amount = totals.entry(asset.as_str()).or_default();
            *total = add(*total, *amount);
        }
        totals
    }

    /// `AppSessionInfoV1`.
    fn info(&self) -> Value {
        let allocations: Vec<_> = self
            .ledger
            .iter()
            .map(|((asset, participant), amount)| {
                json!({ "participant": hex(participant), "asset": asset, "amount": amount.to_string() })
            })
            .collect();
        let mut info = json!({
            "app_session_id": hex(self.definition.session_id()),
            "status": self.status(),
            "app_definition": self.definition,
            "version": self.version.to_string(),
            "allocations": allocations,
        });
        if !self.session_data.is_empty() {
            info["session_data"] = json!(self.session_data);
        }
        info
    }
}

/// Sum of amounts the double parsed or was credited (bounded far below overflow).
fn add(a: Amount, b: Amount) -> Amount {
    a.checked_add(b).expect("amounts are bounded")
}

impl State {
    fn new(config: DoubleConfig) -> Self {
        Self {
            config,
            node_address: PrivateKeySigner::random().address(),
            sessions: HashMap::new(),
            created: Vec::new(),
            wallets: HashMap::new(),
            keys: HashMap::new(),
            key_counter: 0,
            failures: HashMap::new(),
            accepted: HashMap::new(),
        }
    }

    /// Runs one request: an injected failure, or the method.
    fn call(&mut self, method: &str, payload: Value) -> Result<Value, String> {
        if let Some((message, left)) = self.failures.get_mut(method) {
            let message = message.clone();
            *left -= 1;
            if *left == 0 {
                self.failures.remove(method);
            }
            return Err(message);
        }
        let result = match method {
            methods::PING => Ok(json!({})),
            methods::GET_CONFIG => Ok(self.get_config()),
            methods::GET_ASSETS => Ok(self.get_assets()),
            methods::CREATE_APP_SESSION => self.create_app_session(payload),
            methods::SUBMIT_DEPOSIT_STATE => self.submit_deposit_state(payload),
            methods::SUBMIT_APP_STATE => self.submit_app_state(payload),
            methods::GET_APP_SESSIONS => self.get_app_sessions(payload),
            methods::GET_APP_DEFINITION => self.get_app_definition(payload),
            methods::GET_BALANCES => self.get_balances(payload),
            methods::SUBMIT_SESSION_KEY_STATE => self.submit_session_key_state(payload),
            methods::GET_LAST_KEY_STATES => self.get_last_key_states(payload),
            _ => Err(format!("unknown method: {method}")),
        };
        if result.is_ok() {
            *self.accepted.entry(method.to_owned()).or_default() += 1;
        }
        result
    }

    fn balance(&self, wallet: Address, asset: &str) -> Amount {
        self.wallets.get(&(wallet, asset.to_owned())).map_or(Amount::ZERO, |w| w.balance)
    }

    fn add_balance(&mut self, wallet: Address, asset: &str, amount: Amount) {
        let entry = self.wallets.entry((wallet, asset.to_owned())).or_default();
        entry.balance = add(entry.balance, amount);
    }

    /// `failed to get asset decimals: asset 'x' is not supported`.
    fn decimals(&self, asset: &str) -> Result<u8, String> {
        self.config
            .assets
            .iter()
            .find(|(symbol, _)| symbol == asset)
            .map(|(_, decimals)| *decimals)
            .ok_or_else(|| {
                format!("failed to get asset decimals: asset '{asset}' is not supported")
            })
    }

    fn check_session_data(&self, data: &str) -> Result<(), String> {
        if data.len() > self.config.max_session_data {
            return Err(format!(
                "session_data exceeds maximum length of {}",
                self.config.max_session_data
            ));
        }
        Ok(())
    }

    /// `node.v1.get_config`.
    fn get_config(&self) -> Value {
        json!({
            "node_address": hex(self.node_address),
            "node_version": NODE_VERSION,
            "supported_sig_validators": SIG_VALIDATORS,
            "blockchains": [],
        })
    }

    /// `node.v1.get_assets` (no tokens, so a `blockchain_id` filter changes nothing).
    fn get_assets(&self) -> Value {
        let assets: Vec<_> = self
            .config
            .assets
            .iter()
            .map(|(symbol, decimals)| {
                json!({
                    "name": symbol.to_uppercase(),
                    "symbol": symbol,
                    "decimals": decimals,
                    "suggested_blockchain_id": "1",
                    "tokens": [],
                })
            })
            .collect();
        json!({ "assets": assets })
    }

    /// `app_sessions.v1.create_app_session`, checks in the node's order. The total weight is summed in `u32`: the
    /// older stored handler sums in `uint8` and wraps past 255, which is a bug (the newer one widened it).
    fn create_app_session(&mut self, payload: Value) -> Result<Value, String> {
        let req: CreateRequest = parse(payload)?;
        let def = &req.definition;
        if def.participants.len() > self.config.max_participants {
            return Err(format!(
                "participants array exceeds maximum length of {}",
                self.config.max_participants
            ));
        }
        if req.quorum_sigs.len() > def.participants.len() {
            return Err(format!(
                "quorum_sigs count ({}) exceeds participants count ({})",
                req.quorum_sigs.len(),
                def.participants.len()
            ));
        }
        self.check_session_data(&req.session_data)?;
        if def.application_id.is_empty() {
            return Err("application id is required".into());
        }
        if !is_application_id(&def.application_id) {
            return Err(format!("invalid application id: must match {APPLICATION_ID_PATTERN}"));
        }
        let nonce = parse_u64(&def.nonce).ok_or("invalid app definition")?;
        // The newer stored handler says "nonce must be non-zero".
        if nonce == 0 {
            return Err("nonce is zero or not provided".into());
        }
        if def.quorum == 0 {
            return Err("quorum must be greater than zero".into());
        }
        let mut participants: Vec<Participant> = Vec::with_capacity(def.participants.len());
        let mut total_weight = 0u32;
        for p in &def.participants {
            let wallet = normalize_address(&p.wallet_address).map_err(|e| {
                format!("invalid participant wallet_address {:?}: {e}", p.wallet_address)
            })?;
            if participants.iter().any(|q| q.wallet_address == wallet) {
                return Err(format!("duplicate participant address: {}", p.wallet_address));
            }
            total_weight += u32::from(p.signature_weight);
            participants
                .push(Participant { wallet_address: wallet, signature_weight: p.signature_weight });
        }
        if u32::from(def.quorum) > total_weight {
            return Err(format!(
                "target quorum ({}) cannot be greater than total sum of weights ({total_weight})",
                def.quorum
            ));
        }
        if req.quorum_sigs.is_empty() {
            return Err("no signatures provided".into());
        }
        let definition = AppDefinition {
            application_id: def.application_id.clone(),
            participants,
            quorum: def.quorum,
            nonce: U64String(nonce),
        };
        let id = definition.session_id();
        let hash = definition.creation_hash(&req.session_data);
        self.verify_quorum(id, &definition, hash, &req.quorum_sigs)?;
        if self.sessions.contains_key(&id) {
            // The node fails on the database insert; the exact text past the prefix is not known.
            return Err(format!(
                "failed to create app session: app session {} already exists",
                hex(id)
            ));
        }
        self.sessions.insert(
            id,
            Session {
                definition,
                version: 1,
                open: true,
                ledger: BTreeMap::new(),
                session_data: req.session_data,
            },
        );
        self.created.push(id);
        Ok(json!({ "app_session_id": hex(id), "version": "1", "status": "open" }))
    }

    /// `app_sessions.v1.submit_app_state`: operate, withdraw or close.
    fn submit_app_state(&mut self, payload: Value) -> Result<Value, String> {
        let req: SubmitRequest = parse(payload)?;
        self.check_session_data(&req.app_state_update.session_data)?;
        let update = Update::parse(&req.app_state_update)?;
        match update.intent {
            INTENT_DEPOSIT => {
                return Err("deposit intent must use submit_deposit_state endpoint".into());
            }
            INTENT_OPERATE | INTENT_WITHDRAW | INTENT_CLOSE => {}
            other => return Err(format!("invalid intent: {}", intent_name(other))),
        }
        let (id, session) = self.find_session(&update)?;
        if !session.open {
            return Err("app session is already closed".into());
        }
        check_sig_count(&req.quorum_sigs, session)?;
        check_version(&update, session)?;
        if req.quorum_sigs.is_empty() {
            return Err("no signatures provided".into());
        }
        self.verify_quorum(id, &session.definition, update.hash(id), &req.quorum_sigs)?;
        let plan = match update.intent {
            INTENT_OPERATE => self.plan_operate(session, &update)?,
            INTENT_WITHDRAW => self.plan_withdraw(session, &update)?,
            _ => plan_close(session, &update)?,
        };
        self.apply(id, plan, update.session_data);
        Ok(json!({}))
    }

    /// `app_sessions.v1.submit_deposit_state`. The order follows the stored handler; the channel check uses the
    /// research's text ("active"; a newer stored handler says "open"), and every current non-zero allocation must
    /// be restated (a newer stored handler skips that check for the deposited asset).
    fn submit_deposit_state(&mut self, payload: Value) -> Result<Value, String> {
        let req: DepositRequest = parse(payload)?;
        self.check_session_data(&req.app_state_update.session_data)?;
        let update = Update::parse(&req.app_state_update)?;
        let user_wallet = normalize_address(&req.user_state.user_wallet)
            .map_err(|e| format!("invalid user_wallet: {e}"))?;
        let user_state = UserState::parse(&req.user_state)?;
        let (id, session) = self.find_session(&update)?;
        check_sig_count(&req.quorum_sigs, session)?;
        if !session.open {
            return Err("app session is already closed".into());
        }
        check_version(&update, session)?;
        if update.intent != INTENT_DEPOSIT {
            return Err(format!(
                "invalid intent: expected 'deposit', got '{}'",
                intent_name(update.intent)
            ));
        }
        if req.quorum_sigs.is_empty() {
            return Err("no signatures provided".into());
        }
        if user_state.transition != "commit" {
            return Err(format!(
                "user state transition must have 'commit' type, got '{}'",
                user_state.transition
            ));
        }
        let asset = user_state.asset.as_str();
        if !self.wallets.get(&(user_wallet, asset.to_owned())).is_some_and(|w| w.channel) {
            return Err("user has no active channel".into());
        }
        if user_state.account_id != update.raw_id {
            return Err(format!(
                "user state transition account ID '{}' does not match app session ID '{}'",
                user_state.account_id, update.raw_id
            ));
        }
        if !user_state.signed {
            return Err("missing user signature on user state".into());
        }
        // Where the node validates the state's advancement; the texts past the prefix are the double's.
        let committed = user_state.amount;
        if committed.is_negative() || committed.value.is_zero() {
            return Err("invalid state transitions: commit amount must be positive".into());
        }
        let available = self.balance(user_wallet, asset);
        if available < committed.value {
            return Err(format!(
                "invalid state transitions: insufficient balance: available {available}, required {}",
                committed.value
            ));
        }
        self.verify_quorum(id, &session.definition, update.hash(id), &req.quorum_sigs)?;

        let mut ledger = session.ledger.clone();
        let mut incoming: HashSet<(&str, &str)> = HashSet::new();
        let mut total = Amount::ZERO;
        for alloc in &update.allocations {
            let amount = alloc.non_negative()?;
            let decimals = self.decimals(&alloc.asset)?;
            alloc.check_precision(decimals)?;
            if !incoming.insert((alloc.participant.as_str(), alloc.asset.as_str())) {
                return Err(alloc.duplicate());
            }
            let member = session.member(&alloc.participant);
            let current =
                member.map_or(Amount::ZERO, |wallet| session.amount(wallet, &alloc.asset));
            if amount < current {
                return Err(format!(
                    "decreased allocation for {} for participant {}",
                    alloc.asset, alloc.participant
                ));
            }
            if amount > current {
                let wallet = member.ok_or_else(|| alloc.non_participant())?;
                if alloc.asset != user_state.asset {
                    return Err(format!(
                        "app session deposit allocation for asset '{}' does not match user channel state asset '{}'",
                        alloc.asset, user_state.asset
                    ));
                }
                total = add(total, amount.checked_sub(current).expect("amount > current"));
                ledger.insert((alloc.asset.clone(), wallet), amount);
            }
        }
        for (wallet, asset, current) in session.holdings() {
            if !incoming.contains(&(hex(wallet).as_str(), asset)) {
                return Err(format!(
                    "deposit intent missing allocation for participant {}, asset {asset} with current amount {current}",
                    hex(wallet)
                ));
            }
        }
        if total != committed.value {
            return Err(format!(
                "total deposit amount {total} does not match transition amount {committed}"
            ));
        }
        let wallet = self.wallets.get_mut(&(user_wallet, asset.to_owned())).expect("has a channel");
        wallet.balance = wallet.balance.checked_sub(committed.value).expect("balance checked");
        self.apply(id, Plan { ledger, releases: Vec::new(), close: false }, update.session_data);
        // The node answers with its signature on the user state; the double signs nothing.
        Ok(json!({ "signature": zero_sig(65) }))
    }

    /// The session an update names (`app session not found`).
    fn find_session(&self, update: &Update) -> Result<(B256, &Session), String> {
        update
            .id
            .and_then(|id| self.sessions.get(&id).map(|session| (id, session)))
            .ok_or_else(|| "app session not found".to_owned())
    }

    /// Operate (`handleOperateIntent`): any redistribution among participants that conserves every asset's total;
    /// every current non-zero holding restated.
    fn plan_operate(&self, session: &Session, update: &Update) -> Result<Plan, String> {
        let mut incoming: BTreeMap<(String, Address), Amount> = BTreeMap::new();
        let mut sums: BTreeMap<&str, Amount> = BTreeMap::new();
        for alloc in &update.allocations {
            let wallet =
                session.member(&alloc.participant).ok_or_else(|| alloc.non_participant())?;
            let amount = alloc.non_negative()?;
            let decimals = self.decimals(&alloc.asset)?;
            alloc.check_precision(decimals)?;
            if incoming.insert((alloc.asset.clone(), wallet), amount).is_some() {
                return Err(alloc.duplicate());
            }
            let sum = sums.entry(alloc.asset.as_str()).or_default();
            *sum = add(*sum, amount);
        }
        for (wallet, asset, current) in session.holdings() {
            if !incoming.contains_key(&(asset.to_owned(), wallet)) {
                return Err(format!(
                    "operate intent missing allocation for participant {}, asset {asset} with current amount {current}",
                    hex(wallet)
                ));
            }
        }
        let balances = session.balances();
        for (asset, total) in &sums {
            let balance = balances.get(asset).copied().unwrap_or(Amount::ZERO);
            if *total != balance {
                return Err(format!(
                    "operate intent allocation mismatch for asset {asset}: total allocations {total}, session balance {balance}"
                ));
            }
        }
        for (asset, balance) in &balances {
            if !balance.is_zero() && !sums.contains_key(asset) {
                return Err(format!(
                    "operate intent missing allocations for asset {asset} with balance {balance}"
                ));
            }
        }
        let mut ledger = session.ledger.clone();
        for (key, amount) in incoming {
            if !amount.is_zero() || ledger.contains_key(&key) {
                ledger.insert(key, amount);
            }
        }
        Ok(Plan { ledger, releases: Vec::new(), close: false })
    }

    /// Withdraw (`handleWithdrawIntent`): holdings only fall; each decrease is released to its participant. The
    /// precision check applies to decreased allocations only, as on the node.
    fn plan_withdraw(&self, session: &Session, update: &Update) -> Result<Plan, String> {
        let mut incoming: BTreeMap<(String, Address), &Decimal> = BTreeMap::new();
        for alloc in &update.allocations {
            let wallet =
                session.member(&alloc.participant).ok_or_else(|| alloc.non_participant())?;
            let amount = alloc.non_negative()?;
            if incoming.contains_key(&(alloc.asset.clone(), wallet)) {
                return Err(alloc.duplicate());
            }
            if !amount.is_zero() && session.amount(wallet, &alloc.asset).is_zero() {
                return Err(format!(
                    "withdraw intent cannot add new allocation for participant {}, asset {}",
                    alloc.participant, alloc.asset
                ));
            }
            incoming.insert((alloc.asset.clone(), wallet), &alloc.amount);
        }
        let mut ledger = session.ledger.clone();
        let mut releases = Vec::new();
        for (wallet, asset, current) in session.holdings() {
            let Some(new) = incoming.get(&(asset.to_owned(), wallet)) else {
                return Err(format!(
                    "withdraw intent missing allocation for participant {}, asset {asset} with current amount {current}",
                    hex(wallet)
                ));
            };
            if new.value > current {
                return Err(format!(
                    "withdraw intent cannot increase allocations: participant {}, asset {asset}",
                    hex(wallet)
                ));
            }
            if new.value < current {
                let decimals = self.decimals(asset)?;
                new.check_precision(decimals).map_err(|e| {
                    format!(
                        "invalid withdraw amount for allocation with asset {asset} and participant {}: {e}",
                        hex(wallet)
                    )
                })?;
                releases.push((
                    wallet,
                    asset.to_owned(),
                    current.checked_sub(new.value).expect("decrease"),
                ));
                ledger.insert((asset.to_owned(), wallet), new.value);
            }
        }
        Ok(Plan { ledger, releases, close: false })
    }

    fn apply(&mut self, id: B256, plan: Plan, session_data: String) {
        for (wallet, asset, amount) in plan.releases {
            self.add_balance(wallet, &asset, amount);
        }
        let session = self.sessions.get_mut(&id).expect("checked");
        session.ledger = plan.ledger;
        session.version += 1;
        if plan.close {
            session.open = false;
        }
        if !session_data.is_empty() {
            session.session_data = session_data;
        }
    }

    /// `verifyQuorum`: every signature must come from a participant (directly, `0xA1`, or through an active app
    /// session key, `0xA2`); distinct wallets' weights add up to at least the quorum.
    fn verify_quorum(
        &self,
        session_id: B256,
        definition: &AppDefinition,
        hash: B256,
        signatures: &[String],
    ) -> Result<(), String> {
        let mut signed = HashSet::new();
        let mut achieved = 0u32;
        for (index, signature) in signatures.iter().enumerate() {
            let bytes = hexutil_decode(signature)
                .map_err(|e| format!("failed to decode signature: {e}"))?;
            if bytes.is_empty() {
                return Err(format!("empty signature after decode at index {index}"));
            }
            let wallet = self
                .recover_signer(&bytes, hash, session_id, &definition.application_id)
                .map_err(|e| format!("failed to recover user wallet: {e}"))?;
            let participant = definition
                .participant(wallet)
                .ok_or_else(|| format!("signature from non-participant: {}", hex(wallet)))?;
            if signed.insert(wallet) {
                achieved += u32::from(participant.signature_weight);
            }
        }
        if achieved < u32::from(definition.quorum) {
            return Err(format!(
                "quorum not met: achieved {achieved}, required {}",
                definition.quorum
            ));
        }
        Ok(())
    }

    /// `AppSessionKeyValidatorV1.Recover`: the wallet behind a prefixed quorum signature.
    fn recover_signer(
        &self,
        signature: &[u8],
        hash: B256,
        session_id: B256,
        application_id: &str,
    ) -> Result<Address, String> {
        let (kind, rest) = signature.split_first().expect("not empty");
        match kind {
            0xA1 => recover_eip191(hash, rest)
                .map_err(|e| format!("failed to recover wallet address: {e}")),
            0xA2 => {
                let key = recover_eip191(hash, rest)
                    .map_err(|e| format!("failed to recover session key address: {e}"))?;
                self.session_key_owner(key, session_id, application_id)
            }
            other => Err(format!("invalid signature: unknown signer type {other}")),
        }
    }

    /// `GetAppSessionKeyOwner`: the latest state of `key`, unexpired, scoped to the session or its application
    /// (the three-argument form, so an application-scoped key also signs the creation).
    fn session_key_owner(
        &self,
        key: Address,
        session_id: B256,
        application_id: &str,
    ) -> Result<Address, String> {
        let session = hex(session_id);
        self.keys
            .get(&key)
            .map(|entry| &entry.state)
            .filter(|state| state.is_active(unix_now()))
            .filter(|state| {
                state.app_session_ids.iter().any(|id| id.eq_ignore_ascii_case(&session))
                    || state
                        .application_ids
                        .iter()
                        .any(|id| id.eq_ignore_ascii_case(application_id))
            })
            .map(|state| state.user_address)
            .ok_or_else(|| {
                format!(
                    "no active session key found for key {} and app session {session}",
                    hex(key)
                )
            })
    }

    /// `app_sessions.v1.get_app_sessions`, in creation order (`"sort": "desc"` reverses it).
    fn get_app_sessions(&self, payload: Value) -> Result<Value, String> {
        let req: GetSessionsRequest = parse(payload)?;
        let by_id = req.app_session_id.filter(|id| !id.is_empty());
        let by_participant = req.participant.filter(|p| !p.is_empty()).map(|p| p.to_lowercase());
        if by_id.is_none() && by_participant.is_none() {
            return Err("either app_session_id or participant must be provided".into());
        }
        let status = req.status.filter(|s| !s.is_empty());
        if let Some(status) = &status
            && status != "open"
            && status != "closed"
        {
            return Err(format!("invalid status: {status}"));
        }
        let wanted_id = by_id.map(|id| B256::from_str(&id).ok());
        let mut found: Vec<&Session> = self
            .created
            .iter()
            .filter(|id| wanted_id.is_none_or(|wanted| wanted == Some(**id)))
            .map(|id| &self.sessions[id])
            .filter(|s| {
                by_participant.as_ref().is_none_or(|p| s.member(p).is_some())
                    && status.as_ref().is_none_or(|status| s.status() == status.as_str())
            })
            .collect();
        let page = req.pagination.unwrap_or_default();
        if page.sort.as_deref() == Some("desc") {
            found.reverse();
        }
        let (offset, limit) = page.window();
        let sessions: Vec<_> =
            found.iter().skip(offset as usize).take(limit as usize).map(|s| s.info()).collect();
        Ok(
            json!({ "app_sessions": sessions, "metadata": page_metadata(found.len(), offset, limit) }),
        )
    }

    /// `app_sessions.v1.get_app_definition`.
    fn get_app_definition(&self, payload: Value) -> Result<Value, String> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Req {
            app_session_id: String,
        }
        let req: Req = parse(payload)?;
        let session = B256::from_str(&req.app_session_id)
            .ok()
            .and_then(|id| self.sessions.get(&id))
            .ok_or("app session not found")?;
        Ok(json!({ "definition": session.definition }))
    }

    /// `user.v1.get_balances`; `enforced` mirrors `amount` (the double has no on-chain side).
    fn get_balances(&self, payload: Value) -> Result<Value, String> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Req {
            wallet: String,
        }
        let req: Req = parse(payload)?;
        let wallet = normalize_address(&req.wallet).map_err(|e| format!("invalid wallet: {e}"))?;
        let mut balances: Vec<_> = self
            .wallets
            .iter()
            .filter(|((owner, _), _)| *owner == wallet)
            .map(|((_, asset), w)| (asset, w.balance))
            .collect();
        balances.sort();
        let balances: Vec<_> = balances
            .into_iter()
            .map(|(asset, amount)| {
                json!({ "asset": asset, "amount": amount.to_string(), "enforced": amount.to_string() })
            })
            .collect();
        Ok(json!({ "balances": balances }))
    }

    /// `app_sessions.v1.submit_session_key_state` (newest stored handler, texts prefixed
    /// `invalid_session_key_state:`). A state with `expires_at` in the past revokes the key and needs only
    /// `user_sig`; any other needs `session_key_sig` too. Both sign [`AppSessionKeyState::pack`].
    fn submit_session_key_state(&mut self, payload: Value) -> Result<Value, String> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Req {
            state: RawKeyState,
        }
        let invalid = |why: String| format!("invalid_session_key_state: {why}");
        let raw = parse::<Req>(payload)?.state;
        let version = parse_u64(&raw.version).ok_or_else(|| {
            invalid(format!("invalid version: {:?} is not a uint64", raw.version))
        })?;
        let expires_at = parse_i64(&raw.expires_at).ok_or_else(|| {
            invalid(format!("invalid expires_at: {:?} is not an int64", raw.expires_at))
        })?;
        let user = normalize_address(&raw.user_address)
            .map_err(|e| invalid(format!("invalid user_address: {e}")))?;
        let key = normalize_address(&raw.session_key)
            .map_err(|e| invalid(format!("invalid session_key: {e}")))?;
        if user == key {
            return Err(invalid("session_key must differ from user_address".into()));
        }
        if version == 0 {
            return Err(invalid("version must be greater than 0".into()));
        }
        let expires_at = u64::try_from(expires_at)
            .map_err(|_| invalid("expires_at must be non-negative".into()))?;
        for (field, ids) in
            [("application_ids", &raw.application_ids), ("app_session_ids", &raw.app_session_ids)]
        {
            if let Some(id) = ids.iter().find(|id| **id != id.to_lowercase()) {
                return Err(invalid(format!("{field} must be lowercase, got: {id}")));
            }
        }
        if raw.user_sig.is_empty() {
            return Err(invalid("user_sig is required".into()));
        }
        let state = AppSessionKeyState {
            user_address: user,
            session_key: key,
            version: U64String(version),
            application_ids: raw.application_ids,
            app_session_ids: raw.app_session_ids,
            expires_at: U64String(expires_at),
            user_sig: raw.user_sig,
            session_key_sig: Some(raw.session_key_sig).filter(|sig| !sig.is_empty()),
        };
        let revoking = !state.is_active(unix_now());
        if !revoking && state.session_key_sig.is_none() {
            return Err(invalid("session_key_sig is required".into()));
        }
        check_key_sig(state.recover_user_sig(), user, "user_sig", "user_address")
            .map_err(invalid)?;
        if !revoking {
            check_key_sig(state.recover_session_key_sig(), key, "session_key_sig", "session_key")
                .map_err(invalid)?;
        }
        let latest = self.keys.get(&key).map(|entry| &entry.state);
        if latest.is_some_and(|latest| latest.user_address != user) {
            return Err(invalid("session_key not allowed".into()));
        }
        let expected = latest.map_or(0, |latest| latest.version.0) + 1;
        if version != expected {
            return Err(invalid(format!("expected version {expected}, got {version}")));
        }
        self.key_counter += 1;
        self.keys.insert(key, KeyEntry { state, submitted: self.key_counter });
        Ok(json!({}))
    }

    /// `app_sessions.v1.get_last_key_states`: the latest state of each key of a wallet, newest first, active
    /// ones only unless `include_inactive`.
    fn get_last_key_states(&self, payload: Value) -> Result<Value, String> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Req {
            user_address: String,
            session_key: Option<String>,
            include_inactive: Option<bool>,
            pagination: Option<RawPagination>,
        }
        let req: Req = parse(payload)?;
        if req.user_address.is_empty() {
            return Err("user_address is required".into());
        }
        let page = req.pagination.unwrap_or_default();
        if page.sort.as_deref().is_some_and(|sort| !sort.is_empty()) {
            return Err("invalid_pagination: sort is not supported by get_last_key_states".into());
        }
        let user = req.user_address.to_lowercase();
        let key = req.session_key.filter(|k| !k.is_empty()).map(|k| k.to_lowercase());
        let now = unix_now();
        let mut entries: Vec<&KeyEntry> = self
            .keys
            .values()
            .filter(|entry| hex(entry.state.user_address) == user)
            .filter(|entry| key.as_ref().is_none_or(|key| hex(entry.state.session_key) == *key))
            .filter(|entry| req.include_inactive == Some(true) || entry.state.is_active(now))
            .collect();
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.submitted));
        let (offset, limit) = page.window();
        let states: Vec<_> = entries
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|entry| &entry.state)
            .collect();
        Ok(json!({ "states": states, "metadata": page_metadata(entries.len(), offset, limit) }))
    }
}

/// Close (`handleCloseIntent`): the allocations repeat the current holdings exactly; everything is released and
/// the session ends.
fn plan_close(session: &Session, update: &Update) -> Result<Plan, String> {
    let mut incoming: BTreeMap<(String, Address), Amount> = BTreeMap::new();
    for alloc in &update.allocations {
        let wallet = session.member(&alloc.participant).ok_or_else(|| alloc.non_participant())?;
        let amount = alloc.non_negative()?;
        if incoming.insert((alloc.asset.clone(), wallet), amount).is_some() {
            return Err(alloc.duplicate());
        }
    }
    let holdings = session.holdings();
    for &(wallet, asset, current) in &holdings {
        let Some(provided) = incoming.get(&(asset.to_owned(), wallet)) else {
            return Err(format!(
                "close intent missing allocation for participant {}, asset {asset} with current amount {current}",
                hex(wallet)
            ));
        };
        if *provided != current {
            return Err(format!(
                "close intent requires allocations to match current state: participant {}, asset {asset}, current {current}, provided {provided}",
                hex(wallet)
            ));
        }
    }
    for ((asset, wallet), amount) in &incoming {
        if !amount.is_zero() && session.amount(*wallet, asset).is_zero() {
            return Err(format!(
                "close intent contains unexpected allocation for participant {}, asset {asset} with amount {amount}",
                hex(wallet)
            ));
        }
    }
    let ledger = session.ledger.keys().map(|key| (key.clone(), Amount::ZERO)).collect();
    let releases = holdings
        .into_iter()
        .map(|(wallet, asset, amount)| (wallet, asset.to_owned(), amount))
        .collect();
    Ok(Plan { ledger, releases, close: true })
}

fn check_sig_count(signatures: &[String], session: &Session) -> Result<(), String> {
    let participants = session.definition.participants.len();
    if signatures.len() > participants {
        return Err(format!(
            "quorum_sigs count ({}) exceeds participants count ({participants})",
            signatures.len()
        ));
    }
    Ok(())
}

fn check_version(update: &Update, session: &Session) -> Result<(), String> {
    if update.version != session.version + 1 {
        return Err(format!(
            "invalid app session version: expected {}, got {}",
            session.version + 1,
            update.version
        ));
    }
    Ok(())
}

/// `user_sig` / `session_key_sig` must recover to `expected`.
fn check_key_sig(
    recovered: Result<Address, KeySigError>,
    expected: Address,
    field: &str,
    owner: &str,
) -> Result<(), String> {
    match recovered {
        Ok(signer) if signer == expected => Ok(()),
        Ok(_) => Err(format!("{field} does not match {owner}")),
        Err(e @ KeySigError::Hex) => Err(format!("failed to decode {field}: {e}")),
        Err(e) => Err(format!("failed to recover {field}: {e}")),
    }
}

/// The address whose key signed the 32 bytes of `hash` with EIP-191.
fn recover_eip191(hash: B256, signature: &[u8]) -> Result<Address, String> {
    if signature.len() != 65 {
        return Err(format!("invalid signature length: {}", signature.len()));
    }
    Signature::from_raw(signature)
        .and_then(|sig| sig.recover_address_from_prehash(&eip191_hash_message(hash)))
        .map_err(|e| e.to_string())
}

/// go-ethereum's `hexutil.Decode`, with its error texts.
fn hexutil_decode(text: &str) -> Result<Vec<u8>, &'static str> {
    if text.is_empty() {
        return Err("empty hex string");
    }
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .ok_or("hex string without 0x prefix")?;
    if digits.len() % 2 == 1 {
        return Err("hex string of odd length");
    }
    alloy::hex::decode(digits).map_err(|_| "invalid hex string")
}

/// `core.NormalizeHexAddress`: 40 hex digits, `0x` optional, any case.
fn normalize_address(text: &str) -> Result<Address, String> {
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
    if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{text:?} is not a 20-byte hex address"));
    }
    Address::from_str(digits).map_err(|e| e.to_string())
}

/// `^[a-z0-9_-]{1,66}$`.
fn is_application_id(id: &str) -> bool {
    (1..=66).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Go's `strconv.ParseUint(s, 10, 64)`: decimal digits only (Rust's parser would also take a `+`).
fn parse_u64(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Go's `strconv.ParseInt(s, 10, 64)`.
fn parse_i64(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A payload the method's request type does not fit: the node's fallback text.
fn parse<T: DeserializeOwned>(payload: Value) -> Result<T, String> {
    serde_json::from_value(payload).map_err(|_| "failed to parse parameters".to_owned())
}

fn page_metadata(total: usize, offset: u32, limit: u32) -> Value {
    let total = u32::try_from(total).unwrap_or(u32::MAX);
    json!({
        "page": offset / limit + 1,
        "per_page": limit,
        "total_count": total,
        "page_count": total.div_ceil(limit),
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Requests as the node decodes them: every field optional (Go zero values), amounts and ids as raw strings.
// ---------------------------------------------------------------------------------------------------------------

const INTENT_OPERATE: u8 = 0;
const INTENT_DEPOSIT: u8 = 1;
const INTENT_WITHDRAW: u8 = 2;
const INTENT_CLOSE: u8 = 3;

/// `AppStateUpdateIntent.String()`.
fn intent_name(code: u8) -> String {
    match code {
        INTENT_OPERATE => "operate".into(),
        INTENT_DEPOSIT => "deposit".into(),
        INTENT_WITHDRAW => "withdraw".into(),
        INTENT_CLOSE => "close".into(),
        4 => "rebalance".into(),
        other => format!("unknown({other})"),
    }
}

/// Go decodes `null` into a slice as an empty one.
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawParticipant {
    wallet_address: String,
    signature_weight: u8,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawDefinition {
    application_id: String,
    #[serde(deserialize_with = "null_as_empty")]
    participants: Vec<RawParticipant>,
    quorum: u8,
    nonce: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct CreateRequest {
    definition: RawDefinition,
    session_data: String,
    #[serde(deserialize_with = "null_as_empty")]
    quorum_sigs: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawAllocation {
    participant: String,
    asset: String,
    amount: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawUpdate {
    app_session_id: String,
    intent: u8,
    version: String,
    #[serde(deserialize_with = "null_as_empty")]
    allocations: Vec<RawAllocation>,
    session_data: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct SubmitRequest {
    app_state_update: RawUpdate,
    #[serde(deserialize_with = "null_as_empty")]
    quorum_sigs: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct DepositRequest {
    app_state_update: RawUpdate,
    #[serde(deserialize_with = "null_as_empty")]
    quorum_sigs: Vec<String>,
    user_state: RawUserState,
}

/// A transition type: a number in the newer `core` (`TransitionType uint8`, commit = 40), its name in an older
/// one (`TransitionType string`). The double takes both.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawTransitionType {
    Code(u8),
    Name(String),
}

impl Default for RawTransitionType {
    /// Go's zero value: void.
    fn default() -> Self {
        Self::Code(0)
    }
}

impl RawTransitionType {
    /// `TransitionType.String()`.
    fn name(&self) -> String {
        let name = match self {
            Self::Name(name) => return name.clone(),
            Self::Code(0) => "void",
            Self::Code(1) => "acknowledgement",
            Self::Code(10) => "home_deposit",
            Self::Code(11) => "home_withdrawal",
            Self::Code(20) => "escrow_deposit",
            Self::Code(21) => "escrow_withdraw",
            Self::Code(30) => "transfer_send",
            Self::Code(31) => "transfer_receive",
            Self::Code(40) => "commit",
            Self::Code(41) => "release",
            Self::Code(100) => "migrate",
            Self::Code(110) => "escrow_lock",
            Self::Code(120) => "mutual_lock",
            Self::Code(other) => return format!("unknown({other})"),
        };
        name.into()
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawTransition {
    #[serde(rename = "type")]
    kind: RawTransitionType,
    account_id: String,
    amount: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawLedger {
    blockchain_id: String,
    user_balance: String,
    user_net_flow: String,
    node_balance: String,
    node_net_flow: String,
}

impl RawLedger {
    /// `unmapLedgerV1`'s parsing.
    fn parses(&self) -> bool {
        parse_u64(&self.blockchain_id).is_some()
            && [&self.user_balance, &self.user_net_flow, &self.node_balance, &self.node_net_flow]
                .iter()
                .all(|amount| Decimal::parse(amount).is_some())
    }
}

/// `StateV1`, the fields the double reads.
#[derive(Default, Deserialize)]
#[serde(default)]
struct RawUserState {
    transition: RawTransition,
    asset: String,
    user_wallet: String,
    epoch: String,
    version: String,
    home_ledger: RawLedger,
    escrow_ledger: Option<RawLedger>,
    user_sig: Option<String>,
}

/// What a deposit checks of the depositor's channel state.
struct UserState {
    transition: String,
    account_id: String,
    amount: Decimal,
    asset: String,
    signed: bool,
}

impl UserState {
    /// `unmapStateV1`: amounts, epoch, version and ledgers must parse (`failed to parse user state`).
    fn parse(raw: &RawUserState) -> Result<Self, String> {
        let fail = || "failed to parse user state".to_owned();
        let amount = Decimal::parse(&raw.transition.amount).ok_or_else(fail)?;
        let numbers = parse_u64(&raw.epoch).and(parse_u64(&raw.version));
        let ledgers =
            raw.home_ledger.parses() && raw.escrow_ledger.as_ref().is_none_or(RawLedger::parses);
        if numbers.is_none() || !ledgers {
            return Err(fail());
        }
        Ok(Self {
            transition: raw.transition.kind.name(),
            account_id: raw.transition.account_id.clone(),
            amount,
            asset: raw.asset.clone(),
            signed: raw.user_sig.is_some(),
        })
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawKeyState {
    user_address: String,
    session_key: String,
    version: String,
    #[serde(deserialize_with = "null_as_empty")]
    application_ids: Vec<String>,
    #[serde(deserialize_with = "null_as_empty")]
    app_session_ids: Vec<String>,
    expires_at: String,
    user_sig: String,
    session_key_sig: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawPagination {
    offset: Option<u32>,
    limit: Option<u32>,
    sort: Option<String>,
}

impl RawPagination {
    /// Offset and limit: a missing or zero limit, or one above the page limit, is the page limit.
    fn window(&self) -> (u32, u32) {
        let limit = self.limit.filter(|l| (1..=PAGE_LIMIT).contains(l)).unwrap_or(PAGE_LIMIT);
        (self.offset.unwrap_or(0), limit)
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct GetSessionsRequest {
    app_session_id: Option<String>,
    participant: Option<String>,
    status: Option<String>,
    pagination: Option<RawPagination>,
}

/// An update as `unmapAppStateUpdateV1` leaves it: amounts parsed but kept as sent, participants lower-cased.
struct Update {
    /// The id as sent (compared as text with a deposit's `account_id`).
    raw_id: String,
    id: Option<B256>,
    intent: u8,
    version: u64,
    allocations: Vec<Alloc>,
    session_data: String,
}

struct Alloc {
    /// Lower-cased, not validated.
    participant: String,
    asset: String,
    amount: Decimal,
}

/// `(bytes32 appSessionId, uint8 intent, uint64 version, (address,string,string)[] allocations, string data)`.
type UpdateAbi = (
    sol_data::FixedBytes<32>,
    sol_data::Uint<8>,
    sol_data::Uint<64>,
    sol_data::Array<(sol_data::Address, sol_data::String, sol_data::String)>,
    sol_data::String,
);

impl Update {
    fn parse(raw: &RawUpdate) -> Result<Self, String> {
        let fail = || "failed to parse app state update".to_owned();
        let allocations = raw
            .allocations
            .iter()
            .map(|a| {
                Some(Alloc {
                    participant: a.participant.to_lowercase(),
                    asset: a.asset.clone(),
                    amount: Decimal::parse(&a.amount)?,
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(fail)?;
        Ok(Self {
            raw_id: raw.app_session_id.clone(),
            id: B256::from_str(&raw.app_session_id).ok(),
            intent: raw.intent,
            version: parse_u64(&raw.version).ok_or_else(fail)?,
            allocations,
            session_data: raw.session_data.clone(),
        })
    }

    /// `PackAppStateUpdateV1`, computed here from the amounts as sent (in their shortest form, sign kept) rather
    /// than through [`crate::AppStateUpdate::hash`], which cannot carry the negative amounts the node must still
    /// verify before refusing them.
    fn hash(&self, id: B256) -> B256 {
        let allocations: Vec<(Address, String, String)> = self
            .allocations
            .iter()
            .map(|a| {
                // go-ethereum's `HexToAddress` never fails; an unparsable participant hashes as some address
                // that no participant signed, which is what the double's zero address stands for.
                let participant = Address::from_str(&a.participant).unwrap_or(Address::ZERO);
                (participant, a.asset.clone(), a.amount.to_string())
            })
            .collect();
        let fields = (id, self.intent, self.version, allocations, self.session_data.clone());
        keccak256(UpdateAbi::abi_encode_params(&fields))
    }
}

impl Alloc {
    fn non_negative(&self) -> Result<Amount, String> {
        if self.amount.is_negative() {
            return Err(format!("negative allocation: {} for asset {}", self.amount, self.asset));
        }
        Ok(self.amount.value)
    }

    /// `invalid amount for allocation with asset X and participant Y: <precision error>`.
    fn check_precision(&self, decimals: u8) -> Result<(), String> {
        self.amount.check_precision(decimals).map_err(|e| {
            format!(
                "invalid amount for allocation with asset {} and participant {}: {e}",
                self.asset, self.participant
            )
        })
    }

    fn non_participant(&self) -> String {
        format!("allocation to non-participant {}", self.participant)
    }

    fn duplicate(&self) -> String {
        format!("duplicate allocation for participant {}, asset {}", self.participant, self.asset)
    }
}

/// A decimal as shopspring's `NewFromString` reads it: sign, digits, optional fraction and exponent. The value is
/// kept exactly; the exponent is the one written, so `"1.5000000"` has exponent −7 although it equals 1.5.
#[derive(Clone, Copy, Debug)]
struct Decimal {
    negative: bool,
    value: Amount,
    exponent: i64,
}

impl Decimal {
    fn parse(text: &str) -> Option<Self> {
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exp) = match unsigned.find(['e', 'E']) {
            Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()?),
            None => (unsigned, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = format!("{int}{frac}");
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let exponent = exp.checked_sub(i64::try_from(frac.len()).ok()?)?;
        let integer_digits = i64::try_from(digits.len()).ok()?.checked_add(exponent)?;
        if integer_digits > MAX_INTEGER_DIGITS || -exponent > MAX_FRACTION_DIGITS {
            return None;
        }
        let mut units = U256::from_str_radix(&digits, 10).ok()?;
        let scale = if exponent >= 0 {
            units *= U256::from(10).pow(U256::from(exponent.unsigned_abs()));
            0
        } else {
            u8::try_from(-exponent).ok()?
        };
        Some(Self { negative, value: Amount::from_base_units(units, scale), exponent })
    }

    fn is_negative(&self) -> bool {
        self.negative && !self.value.is_zero()
    }

    /// `core.ValidateDecimalPrecision`.
    fn check_precision(&self, decimals: u8) -> Result<(), String> {
        if self.exponent < -i64::from(decimals) {
            return Err(format!(
                "amount exceeds maximum decimal precision: max {decimals} decimals allowed, got {}",
                -self.exponent
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Decimal {
    /// shopspring's `String()`: the shortest form, with its sign.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_negative() {
            f.write_str("-")?;
        }
        fmt::Display::fmt(&self.value, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AppStateUpdate, Intent};

    #[test]
    fn decimals_keep_the_written_exponent() {
        for (text, shown, exponent) in [
            ("1.5000000", "1.5", -7),
            ("0.90", "0.9", -2),
            ("-0.5", "-0.5", -1),
            ("-0", "0", 0),
            ("1e-7", "0.0000001", -7),
            ("25e3", "25000", 3),
            (".5", "0.5", -1),
            ("7.", "7", 0),
        ] {
            let d = Decimal::parse(text).unwrap();
            assert_eq!(d.to_string(), shown, "{text}");
            assert_eq!(d.exponent, exponent, "{text}");
        }
        for bad in ["", "-", ".", "1.2.3", "abc", "1e", "0x10", "1e40"] {
            assert!(Decimal::parse(bad).is_none(), "{bad}");
        }
        assert!(Decimal::parse("1.5000000").unwrap().check_precision(6).is_err());
        assert!(Decimal::parse("1.500000").unwrap().check_precision(6).is_ok());
    }

    #[test]
    fn update_hash_matches_the_client() {
        let id = B256::repeat_byte(7);
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let client = AppStateUpdate {
            app_session_id: id,
            intent: Intent::Operate,
            version: U64String(3),
            allocations: vec![
                Allocation {
                    participant: a,
                    asset: "usdc".into(),
                    amount: "0.35".parse().unwrap(),
                },
                Allocation { participant: b, asset: "usdc".into(), amount: "0.9".parse().unwrap() },
            ],
            session_data: "{}".into(),
        };
        let raw: RawUpdate =
            serde_json::from_value(serde_json::to_value(&client).unwrap()).unwrap();
        let mut update = Update::parse(&raw).unwrap();
        assert_eq!(update.hash(id), client.hash());
        // Trailing zeros as sent do not change what is signed.
        update.allocations[1].amount = Decimal::parse("0.900").unwrap();
        assert_eq!(update.hash(id), client.hash());
    }

    #[test]
    fn envelopes_are_checked_in_order() {
        assert_eq!(parse_envelope("nope"), Err(0));
        assert_eq!(parse_envelope(r#"[1,7,"m",{}]"#), Err(0));
        assert_eq!(parse_envelope(r#"["x",7,"m",{},1]"#), Err(0));
        assert_eq!(parse_envelope(r#"[1,7,"m",[],1]"#), Err(7));
        assert_eq!(parse_envelope(r#"[1,7,3,{},1]"#), Err(7));
        assert_eq!(parse_envelope(r#"[1,7,"m",{"a":1},1]"#), Ok((7, "m".into(), json!({"a":1}))));
    }

    #[test]
    fn go_number_parsing() {
        assert_eq!(parse_u64("007"), Some(7));
        assert_eq!(parse_u64("+7"), None);
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_i64("-5"), Some(-5));
        assert_eq!(parse_i64("-"), None);
        assert_eq!(hexutil_decode("12"), Err("hex string without 0x prefix"));
        assert_eq!(hexutil_decode("0x1"), Err("hex string of odd length"));
        assert_eq!(hexutil_decode("0xzz"), Err("invalid hex string"));
        assert!(
            is_application_id("beat-stream_1")
                && !is_application_id("Beat")
                && !is_application_id("")
        );
    }
}
