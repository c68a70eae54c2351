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
//!
//! Behind the `test-utils` feature, so the shipped binary never builds it. The files: this one is the public
//! handle ([`Double`]); `server` the WebSocket side; `state` the node's state, method dispatch and reads;
//! `sessions` the app-session rules; `keys` session keys; `wire` the requests as the node decodes them; `parse`
//! Go's parsing rules.

mod keys;
mod parse;
mod server;
mod sessions;
mod state;
mod wire;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt, io,
    net::{Ipv4Addr, SocketAddr},
    str::FromStr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use alloy::{
    primitives::{Address, B256, Signature, U256, eip191_hash_message, keccak256},
    signers::local::PrivateKeySigner,
    sol_types::{SolType, sol_data},
};
use beatstream_primitives::unix_now;
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

use self::{parse::*, server::*, state::*, wire::*};

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
