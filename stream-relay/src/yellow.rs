//! The Yellow Network transport: listeners who pay through Nitrolite v1 app sessions instead of the vault.
//!
//! One app session pays for one play. Its participants are the listener (weight 1), this relay's operator wallet
//! (weight 1) and the artist (weight 0), quorum 2: every update needs the listener's signature and the operator's
//! co-signature, so the listener cannot take back what the artist earned and the operator cannot move the
//! listener's funds; the artist receives its allocation directly when the session closes (`docs/YELLOW.md`).
//!
//! The connection ([`crate::conn`]) checks each update here exactly as the node will (hash, prefix, signer, version
//! current + 1, conservation, the artist's amount equal to what a released second owes), stores it through the
//! same group commit as vault vouchers and acks it; the [`Submitter`] then co-signs it and submits it to the node
//! in version order, catching the node up after an outage.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, U256};
use beatstream_primitives::time::{unix_now, unix_now_f64};
use beatstream_signer::Signer;
use beatstream_yellow::{
    Allocation, Amount, AppDefinition, AppStateUpdate, Client, ClientConfig, Intent, NodeErrorKind,
    QuorumSig, SignerKind, Status, U64String,
    methods::{CreateAppSession, SubmitAppState, SubmitDepositState},
};
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{
    Error, Result,
    config::YellowConfig,
    db::{
        Pool,
        yellow::{self as queue, Pending},
    },
    metrics::Metrics,
    verify::Verifier,
};

/// Longest `session_data` the node accepts.
pub const MAX_SESSION_DATA: usize = 1024;

/// The relay's side of the Yellow transport, shared by every connection.
#[derive(Debug)]
pub struct Yellow {
    client: Client,
    /// The operator's wallet: a local key or a KMS key, one signing request per co-signature.
    operator: Signer,
    /// Application id every app session must carry.
    pub app_id: String,
    /// The asset payments use.
    pub asset: String,
    /// Its decimals: track rates are in these base units.
    pub decimals: u8,
    /// How long an acked update may wait for the node before its session pauses.
    pub submit_grace: Duration,
    /// The newest version the node accepted, per app session this relay submits for.
    accepted: Mutex<HashMap<B256, u64>>,
    wake: Notify,
}

/// A `yellowOpen` that passed every check: what to create, deposit and store.
#[derive(Clone, Debug)]
pub struct CheckedOpen {
    /// The app session id.
    pub id: B256,
    /// The paying wallet.
    pub listener: Address,
    /// The deposit in base units.
    pub deposit: U256,
}

impl Yellow {
    /// The transport for `config`, or `None` when it is off. Loads the operator's key (a KMS key is checked
    /// with KMS now) and starts the node connection (it dials in the background; the relay serves vault listeners
    /// whether or not the node is up).
    pub async fn from_config(config: &YellowConfig) -> Result<Option<Arc<Self>>> {
        let Some(url) = config.yellow_url.clone() else { return Ok(None) };
        let role = YellowConfig::OPERATOR;
        let source = config.operator_key().select(&role).map_err(Error::OperatorKey)?;
        let operator = Signer::load(&role, source).await.map_err(Error::OperatorKey)?;
        let mut client = ClientConfig::new(url);
        client.request_timeout = Duration::from_secs(config.yellow_request_secs);
        Ok(Some(Arc::new(Self {
            client: Client::spawn(client),
            operator,
            app_id: config.yellow_app_id.clone(),
            asset: config.yellow_asset.clone(),
            decimals: config.yellow_asset_decimals,
            submit_grace: Duration::from_secs(config.yellow_submit_grace_secs),
            accepted: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        })))
    }

    /// The operator's wallet.
    pub fn operator(&self) -> Address {
        self.operator.address()
    }

    /// Which backend holds the operator's key.
    pub const fn signer_backend(&self) -> beatstream_signer::Backend {
        self.operator.backend()
    }

    /// The node client.
    pub const fn client(&self) -> &Client {
        &self.client
    }

    /// Wakes the submitter: new states are stored.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The newest version the node accepted for `id`, as far as this relay knows.
    pub fn accepted(&self, id: &B256) -> Option<u64> {
        self.accepted.lock().expect("not poisoned").get(id).copied()
    }

    fn set_accepted(&self, id: B256, version: u64) {
        let mut map = self.accepted.lock().expect("not poisoned");
        let entry = map.entry(id).or_insert(version);
        *entry = (*entry).max(version);
    }

    /// Forgets a closed session.
    pub fn forget(&self, id: &B256) {
        self.accepted.lock().expect("not poisoned").remove(id);
    }

    /// Checks a definition against the relay's terms for a play paying `payee`: this application, exactly three
    /// participants (the listener with weight 1, the operator with weight 1, the payee with weight 0), quorum 2,
    /// a non-zero nonce. Returns the listener.
    pub fn check_definition(&self, def: &AppDefinition, payee: Address) -> Result<Address> {
        let bad = |m: String| Err(Error::InvalidAppSession(m));
        if def.application_id != self.app_id {
            return bad(format!("application_id must be {:?}", self.app_id));
        }
        if def.quorum != 2 {
            return bad("quorum must be 2 (listener and relay operator)".into());
        }
        if def.nonce.0 == 0 {
            return bad("nonce must be non-zero".into());
        }
        if def.participants.len() != 3 {
            return bad(
                "participants must be the listener, the relay operator and the artist".into()
            );
        }
        let weight = |a: Address| def.participant(a).map(|p| p.signature_weight);
        if weight(self.operator()) != Some(1) {
            return bad(format!(
                "the relay operator {} must take part with weight 1",
                self.operator()
            ));
        }
        if weight(payee) != Some(0) {
            return bad(format!("the artist {payee} must take part with weight 0"));
        }
        let others: Vec<_> = def
            .participants
            .iter()
            .filter(|p| p.wallet_address != self.operator() && p.wallet_address != payee)
            .collect();
        match others.as_slice() {
            [listener] if listener.signature_weight == 1 && !listener.wallet_address.is_zero() => {
                Ok(listener.wallet_address)
            }
            _ => bad("exactly one listener with weight 1 must take part".into()),
        }
    }

    /// The wallet behind a quorum signature over `hash`: the signer itself for `0xa1`. `0xa2` (app session keys)
    /// resolves through `keys`, the listener's active keys as the node reported them.
    pub fn signer(
        &self,
        verifier: &Verifier,
        sig: &QuorumSig,
        hash: B256,
        keys: &HashMap<Address, Address>,
    ) -> Result<Address> {
        let signer = verifier.recover(&QuorumSig::digest(hash), &sig.sig)?;
        match sig.kind {
            SignerKind::Wallet => Ok(signer),
            SignerKind::SessionKey => keys.get(&signer).copied().ok_or(Error::WrongSigner),
        }
    }

    /// Checks the allocation list of a state of session `def` (paying `payee` for `listener`) and returns the
    /// payee's and the listener's amounts in base units: only participants, only this asset, no duplicates, the
    /// operator holding nothing, amounts within the asset's precision, and the two adding up to `total` when given.
    pub fn check_allocations(
        &self,
        def: &AppDefinition,
        listener: Address,
        payee: Address,
        allocations: &[Allocation],
        total: Option<U256>,
    ) -> Result<(U256, U256)> {
        let bad = |m: String| Err(Error::AllocationMismatch(m));
        let mut seen = Vec::with_capacity(allocations.len());
        let (mut paid, mut left) = (U256::ZERO, U256::ZERO);
        for a in allocations {
            if def.participant(a.participant).is_none() {
                return bad(format!("allocation to non-participant {}", a.participant));
            }
            if a.asset != self.asset {
                return bad(format!("asset {:?} is not {:?}", a.asset, self.asset));
            }
            if seen.contains(&a.participant) {
                return bad(format!("duplicate allocation for {}", a.participant));
            }
            seen.push(a.participant);
            let units = a
                .amount
                .to_base_units(self.decimals)
                .map_err(|e| Error::AllocationMismatch(e.to_string()))?;
            if a.participant == payee {
                paid = units;
            } else if a.participant == listener {
                left = units;
            } else if !units.is_zero() {
                return bad("the relay operator's allocation must stay zero".into());
            }
        }
        if !seen.contains(&listener) || !seen.contains(&payee) {
            return bad("allocations must list the listener and the artist".into());
        }
        if let Some(total) = total
            && paid.checked_add(left) != Some(total)
        {
            return bad(format!(
                "allocations total {} but the session holds {}",
                self.human(paid.saturating_add(left)),
                self.human(total)
            ));
        }
        Ok((paid, left))
    }

    /// Refuses `session_data` longer than the node takes.
    pub fn check_session_data(data: &str) -> Result<()> {
        if data.len() > MAX_SESSION_DATA {
            return Err(Error::InvalidAppSession(format!(
                "session_data exceeds {MAX_SESSION_DATA} bytes"
            )));
        }
        Ok(())
    }

    /// Base units as the node writes them.
    pub fn human(&self, units: U256) -> Amount {
        Amount::from_base_units(units, self.decimals)
    }

    /// The close that follows `update`: intent close, version + 1, the same allocations and data.
    pub fn close_of(update: &AppStateUpdate) -> AppStateUpdate {
        AppStateUpdate {
            intent: Intent::Close,
            version: U64String(update.version.0 + 1),
            ..update.clone()
        }
    }

    /// Creates the app session on the node (co-signed) and deposits into it. A session the node already has at
    /// version 1 (a retried open) is deposited into; nothing is stored by the relay until both succeed.
    pub async fn create_and_deposit(
        &self,
        msg: &crate::protocol::YellowOpenMsg,
        id: B256,
    ) -> Result<()> {
        let create_hash = msg.definition.creation_hash(&msg.session_data);
        let create = CreateAppSession {
            definition: msg.definition.clone(),
            session_data: msg.session_data.clone(),
            quorum_sigs: vec![msg.create_sig, self.cosign(create_hash).await?],
        };
        match self.client.create_app_session(&create).await {
            Ok(_) => {}
            Err(e) => {
                // A retried open (after a refusal, a lost answer or a relay crash before the session was
                // recorded): the node may already hold this session, empty or funded by exactly this deposit.
                match self.client.get_app_session(id).await {
                    Ok(Some(s)) if s.status == "open" && s.version.0 == 1 => {}
                    Ok(Some(s))
                        if s.status == "open"
                            && s.version.0 == 2
                            && msg.deposit.allocations.iter().all(|a| {
                                s.allocations.iter().any(|r| {
                                    r.participant == a.participant
                                        && r.asset == a.asset
                                        && r.amount == a.amount
                                }) || a.amount.is_zero()
                            }) =>
                    {
                        self.set_accepted(id, 2);
                        return Ok(());
                    }
                    _ => return Err(node_error(e)),
                }
            }
        }
        let deposit = SubmitDepositState {
            app_state_update: msg.deposit.clone(),
            quorum_sigs: vec![msg.deposit_sig, self.cosign(msg.deposit.hash()).await?],
            user_state: msg.user_state.clone(),
        };
        self.client.submit_deposit_state(&deposit).await.map_err(node_error)?;
        self.set_accepted(id, 2);
        Ok(())
    }

    /// The operator's co-signature of `hash`. A signer that fails (a KMS away) changes nothing: the caller retries
    /// as for an unreachable node.
    async fn cosign(&self, hash: B256) -> Result<QuorumSig> {
        QuorumSig::sign_with(&self.operator, SignerKind::Wallet, hash)
            .await
            .map_err(|e| Error::NodeUnavailable(format!("the operator could not co-sign: {e}")))
    }

    /// The listener's active app session keys (key → owner) for `app_session_id` under this application, as the
    /// node reports them.
    pub async fn session_keys(
        &self,
        listener: Address,
        app_session_id: B256,
    ) -> Result<HashMap<Address, Address>> {
        let states = self.client.get_last_key_states(listener).await.map_err(node_error)?;
        let now = unix_now();
        let id = app_session_id.to_string();
        Ok(states
            .into_iter()
            .filter(|s| s.user_address == listener && s.expires_at.0 > now)
            .filter(|s| {
                s.application_ids.contains(&self.app_id)
                    || s.app_session_ids.iter().any(|a| a.eq_ignore_ascii_case(&id))
            })
            .map(|s| (s.session_key, listener))
            .collect())
    }
}

fn node_error(e: beatstream_yellow::Error) -> Error {
    match e {
        beatstream_yellow::Error::Node(e) => Error::NodeRefused(e.message),
        other => Error::NodeUnavailable(other.to_string()),
    }
}

/// Submits stored Yellow states to the node in version order, co-signed by the operator.
///
/// The database is the queue: every state is stored (and acked) before it is submitted, so a relay that restarts,
/// or a node that was away, is caught up from `yellow_states`. A submission whose answer was lost is settled by
/// the version rule: resubmitting it is refused as a version mismatch, and the node's current version (read back)
/// says it landed.
#[derive(Debug)]
pub struct Submitter {
    yellow: Arc<Yellow>,
    pool: Pool,
    relay_id: String,
    metrics: Metrics,
    /// Sessions whose last submission the node refused: when to try again, and the wait after that.
    backoff: Mutex<HashMap<B256, (Instant, Duration)>>,
}

/// What became of one session's pending states in one round.
struct Progress {
    id: B256,
    accepted: Option<u64>,
    closed: bool,
    /// The node refused a state: retried after a backoff, the message kept for operators.
    refused: Option<String>,
    /// A stored state is unusable: no retry can help.
    failed: Option<String>,
}

/// How often abandoned app sessions are looked for (not on every round: rounds follow every ack).
const ADOPT_EVERY: Duration = Duration::from_secs(10);

/// First and longest wait before resubmitting a state the node refused.
const REFUSAL_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

impl Submitter {
    /// A submitter for the sessions relay `relay_id` stores.
    pub fn new(yellow: Arc<Yellow>, pool: Pool, relay_id: String, metrics: Metrics) -> Self {
        Self { yellow, pool, relay_id, metrics, backoff: Mutex::new(HashMap::new()) }
    }

    /// Runs until `shutdown`: submits whenever woken, and at least every half second while anything is behind.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut status = self.yellow.client.watch_status();
        let mut adopted_at: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.yellow.wake.notified() => {}
                _ = status.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            if self.yellow.client.status() != Status::Connected {
                continue;
            }
            if adopted_at.is_none_or(|at| at.elapsed() >= ADOPT_EVERY) {
                adopted_at = Some(Instant::now());
                if let Err(e) = self.adopt().await {
                    warn!(target: "beatstream::relay::yellow", error = %e, "adopting abandoned app sessions failed");
                }
            }
            if let Err(e) = self.round().await {
                warn!(target: "beatstream::relay::yellow", error = %e, "yellow submission round failed");
            }
        }
    }

    /// Takes over the unsubmitted states of a relay that died (no update for a minute), so they still reach the
    /// node.
    async fn adopt(&self) -> Result<()> {
        queue::adopt(&self.pool, &self.relay_id).await
    }

    /// One pass over everything behind.
    async fn round(&self) -> Result<()> {
        let rows = queue::pending(&self.pool, &self.relay_id).await?;
        self.metrics.yellow_backlog.set(rows.len() as i64);
        if rows.is_empty() {
            return Ok(());
        }
        let mut by_session: BTreeMap<B256, Vec<Pending>> = BTreeMap::new();
        let now = Instant::now();
        let waiting: Vec<B256> = {
            let backoff = self.backoff.lock().expect("not poisoned");
            backoff.iter().filter(|(_, (at, _))| *at > now).map(|(id, _)| *id).collect()
        };
        for pending in rows {
            if waiting.contains(&pending.id) {
                continue;
            }
            by_session.entry(pending.id).or_default().push(pending);
        }
        let progress: Vec<Progress> = futures_util::stream::iter(by_session.into_values())
            .map(|states| self.submit_session(states))
            .buffer_unordered(64)
            .collect()
            .await;
        // Everything the node took this round, recorded in one statement (one commit, not one per session).
        let accepted: Vec<(B256, u64, bool)> =
            progress.iter().filter_map(|p| p.accepted.map(|v| (p.id, v, p.closed))).collect();
        queue::record_accepted(&self.pool, &accepted).await?;
        for p in progress {
            if let Some(version) = p.accepted {
                self.yellow.set_accepted(p.id, version);
                if p.closed {
                    self.yellow.forget(&p.id);
                    info!(target: "beatstream::relay::yellow", app_session = %p.id, version, "app session closed on the node");
                }
            }
            if let Some(error) = p.refused {
                {
                    let mut backoff = self.backoff.lock().expect("not poisoned");
                    let wait = backoff
                        .get(&p.id)
                        .map_or(REFUSAL_BACKOFF.0, |(_, w)| (*w * 2).min(REFUSAL_BACKOFF.1));
                    backoff.insert(p.id, (Instant::now() + wait, wait));
                }
                queue::record_refusal(&self.pool, p.id, &error).await?;
            } else if p.accepted.is_some() {
                self.backoff.lock().expect("not poisoned").remove(&p.id);
            }
            if let Some(error) = p.failed {
                queue::record_failure(&self.pool, p.id, &error).await?;
            }
        }
        Ok(())
    }

    /// Submits one session's states in order until one does not go through.
    async fn submit_session(&self, states: Vec<Pending>) -> Progress {
        let id = states[0].id;
        let mut progress =
            Progress { id, accepted: None, closed: false, refused: None, failed: None };
        let client = &self.yellow.client;
        for state in states {
            let update: AppStateUpdate = match serde_json::from_str(&state.update) {
                Ok(u) => u,
                Err(e) => {
                    progress.failed =
                        Some(format!("stored update {} does not decode: {e}", state.version));
                    break;
                }
            };
            let listener_sig = match QuorumSig::from_bytes(&state.sig) {
                Ok(s) => s,
                Err(e) => {
                    progress.failed =
                        Some(format!("stored signature of {} is unusable: {e}", state.version));
                    break;
                }
            };
            let cosig = match self.yellow.cosign(update.hash()).await {
                Ok(sig) => sig,
                Err(e) => {
                    self.metrics.yellow_submit_errors.with_label_values(&["signer"]).inc();
                    warn!(target: "beatstream::relay::yellow", app_session = %id, version = state.version, error = %e, "submission deferred");
                    break;
                }
            };
            let req = SubmitAppState {
                app_state_update: update.clone(),
                quorum_sigs: vec![listener_sig, cosig],
            };
            let intent = match state.intent {
                3 => "close",
                2 => "withdraw",
                _ => "operate",
            };
            match client.submit_app_state(&req).await {
                Ok(()) => {}
                Err(beatstream_yellow::Error::Node(e)) if e.kind() == NodeErrorKind::Version => {
                    // Lost answer, or another relay got there first: the node's version says what landed.
                    self.metrics.yellow_submit_errors.with_label_values(&["version"]).inc();
                    match client.get_app_session(id).await {
                        Ok(Some(s)) if s.version.0 >= state.version => {
                            debug!(target: "beatstream::relay::yellow", app_session = %id, version = state.version, "already on the node");
                        }
                        Ok(_) => {
                            progress.refused = Some(e.message);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                Err(beatstream_yellow::Error::Node(e)) => {
                    self.metrics.yellow_submit_errors.with_label_values(&["refused"]).inc();
                    warn!(target: "beatstream::relay::yellow", app_session = %id, version = state.version, error = %e.message, "node refused a stored state; retrying after a backoff");
                    progress.refused = Some(e.message);
                    break;
                }
                Err(e) => {
                    self.metrics.yellow_submit_errors.with_label_values(&["unavailable"]).inc();
                    debug!(target: "beatstream::relay::yellow", app_session = %id, error = %e, "submission deferred");
                    break;
                }
            }
            self.metrics.yellow_submitted.with_label_values(&[intent]).inc();
            let lag = unix_now_f64() - state.stored_at;
            self.metrics.yellow_submit_lag.observe(lag.max(0.0));
            progress.accepted = Some(state.version);
            progress.closed = state.intent == 3;
        }
        progress
    }
}

/// How long ago an acked version was stored, for pausing a session whose states the node has not taken.
#[derive(Debug, Default)]
pub struct Unsubmitted {
    acked: std::collections::VecDeque<(u64, Instant)>,
}

impl Unsubmitted {
    /// Notes that `version` was acked now.
    pub fn acked(&mut self, version: u64) {
        self.acked.push_back((version, Instant::now()));
    }

    /// Whether the oldest acked version the node has not accepted has waited longer than `grace`.
    pub fn lagging(&mut self, accepted: Option<u64>, grace: Duration) -> bool {
        let accepted = accepted.unwrap_or(0);
        while self.acked.front().is_some_and(|(v, _)| *v <= accepted) {
            self.acked.pop_front();
        }
        self.acked.front().is_some_and(|(_, at)| at.elapsed() > grace)
    }
}
