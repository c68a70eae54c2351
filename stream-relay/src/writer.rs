//! Group commit: vouchers and session changes of many connections, written in one transaction per batch.
//!
//! Each writer task owns one Postgres connection and commits whatever queued up while its previous commit ran, so
//! batches grow with load and a quiet relay commits at once. Listeners are sharded across writers, so one
//! listener's operations stay in order.
//!
//! The balance guard lives in the transaction: [`commit`] takes a transaction-scoped advisory lock per listener
//! ([`lock_keys`], sorted, so two relays never deadlock), reads the listener's available funds, everything its stored
//! vouchers owe and whether the grant is revoked ([`crate::db::state`]), then [`decide`]s every operation with the
//! pure [`crate::guard`]: a voucher is accepted only while its grant is not revoked and
//! `owed + increase <= available`. Every relay sharing the database takes the same locks, so one listener cannot
//! overspend across relays, and a revocation the indexer stored before the commit stops the voucher. The decided
//! statements ([`crate::db::commit`]) follow, and a voucher's outcome is reported after the commit.
//!
//! A writer thread that panics cancels the relay's token and its cause is returned by [`join`], so the relay stops
//! with it rather than serving on with a dead shard.

use std::{
    any::Any,
    collections::{HashMap, HashSet},
    thread::JoinHandle,
    time::Instant,
};

use alloy::primitives::{Address, B256, U256};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};
use uuid::Uuid;

pub use crate::db::rows::{
    CloseReason, NewSession, SessionStatus, SessionUpdate, TipRow, YellowOpenRow, YellowStateRow,
};
use crate::{
    Error, Result,
    db::{
        ConnectOptions,
        commit::{Conn, Writes},
    },
    guard::{self, Funds, Keys, Refusal, State, StoredTip},
    lease::{self, Fast, Leases, Undo},
    metrics::Metrics,
};

/// Where a connection hears about its operations.
pub type Reply = mpsc::UnboundedSender<Outcome>;

/// One operation for the writer.
#[derive(Debug)]
pub enum Op {
    /// Store a verified voucher if it raises the pair's cumulative and the listener can pay it.
    Voucher {
        /// The grant.
        grant_id: B256,
        /// The payee.
        payee: Address,
        /// The grant's listener.
        listener: Address,
        /// The grant's nonce, for the listener's nonce floor.
        nonce: u64,
        /// The grant's cap, clamped as the vault clamps it.
        cap: U256,
        /// The cumulative.
        cumulative: U256,
        /// The session key's signature.
        sig: [u8; 65],
        /// Who to tell.
        reply: Reply,
    },
    /// Store a verified tip if the listener can pay it, its grant's cap allows it and no other tip has its id.
    Tip {
        /// The tip.
        tip: TipRow,
        /// The grant's nonce, for the listener's nonce floor.
        nonce: u64,
        /// The grant's cap, clamped as the vault clamps it.
        cap: U256,
        /// Who to tell.
        reply: Reply,
    },
    /// Store a verified Yellow operate update if it is the app session's next version.
    YellowState {
        /// The state.
        state: YellowStateRow,
        /// Who to tell.
        reply: Reply,
    },
    /// Record a new session, ending any live one of the same pair.
    Open {
        /// The session.
        session: NewSession,
        /// Told `true` once the row is committed, `false` if the commit failed.
        done: oneshot::Sender<bool>,
    },
    /// Record a session's progress, pause, resume or end.
    Update {
        /// The change.
        update: SessionUpdate,
        /// Who to tell the session's amount, for a close.
        reply: Option<Reply>,
    },
}

/// What became of an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A voucher or Yellow state was stored (`Ok`) or refused.
    Voucher {
        /// The (grant or app session, payee) pair.
        key: (B256, Address),
        /// The cumulative (for Yellow, the payee's allocation).
        cumulative: U256,
        /// The Yellow state's version.
        version: Option<u64>,
        /// Stored, or why not.
        result: std::result::Result<(), Refusal>,
    },
    /// A tip was stored (or was already), or refused.
    Tip {
        /// The grant.
        grant_id: B256,
        /// The tip's id.
        tip_id: U256,
        /// Stored, or why not.
        result: std::result::Result<(), Refusal>,
    },
    /// A session was closed; `amount` is what its vouchers paid, `None` if the commit failed.
    Closed {
        /// The session.
        session_id: Uuid,
        /// Paid in this session.
        amount: Option<U256>,
    },
}

/// Sends operations to the writers.
#[derive(Clone, Debug)]
pub struct Writers {
    shards: Vec<mpsc::Sender<Op>>,
}

impl Writers {
    /// Starts `count` writers, each on its own thread with its own runtime and Postgres connection, so a commit's
    /// round trips never queue behind thousands of connection tasks. They run until every [`Writers`] clone is
    /// dropped and their queues are drained; one that panics cancels `on_panic` (see [`join`]).
    pub fn spawn(
        database: ConnectOptions,
        guard: WriterConfig,
        count: usize,
        max_batch: usize,
        metrics: Metrics,
        on_panic: CancellationToken,
    ) -> std::io::Result<(Self, Vec<JoinHandle<()>>)> {
        let mut shards = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for shard in 0..count {
            let (tx, rx) = mpsc::channel(max_batch * 4);
            let writer = Writer {
                database: database.clone(),
                guard: guard.clone(),
                max_batch,
                metrics: metrics.clone(),
                shard,
            };
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let thread =
                spawn_thread(format!("relay-writer-{shard}"), on_panic.clone(), move || {
                    runtime.block_on(writer.run(rx))
                })?;
            threads.push(thread);
            shards.push(tx);
        }
        Ok((Self { shards }, threads))
    }

    /// Queues `op` on its listener's writer; waits while that queue is full.
    pub async fn submit(&self, op: Op) -> Result<()> {
        let listener = match &op {
            Op::Voucher { listener, .. } => *listener,
            Op::Tip { tip, .. } => tip.listener,
            Op::YellowState { state, .. } => state.listener,
            Op::Open { session, .. } => session.listener,
            Op::Update { update, .. } => update.listener,
        };
        let shard = listener[19] as usize % self.shards.len();
        self.shards[shard].send(op).await.map_err(|_| crate::Error::StorageUnavailable)
    }
}

/// What every writer of a relay decides and commits with.
#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// The least time between the starts of two commits of one writer: a writer that committed less than this
    /// ago waits out the rest, gathering what arrives meanwhile, so a loaded relay commits fewer, larger batches
    /// (Postgres spends most of a small commit on the commit itself). A quiet relay commits at once.
    pub commit_interval: std::time::Duration,
    /// The chain, as stored.
    pub chain_id: i64,
    /// This relay's id: whose leases its writers hold.
    pub relay_id: String,
    /// A lease is at most this many times the increase of the voucher that took it
    /// ([`crate::lease::DEFAULT_MULTIPLE`]).
    pub lease_multiple: u32,
}

struct Writer {
    database: ConnectOptions,
    guard: WriterConfig,
    max_batch: usize,
    metrics: Metrics,
    shard: usize,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Op>) {
        let mut conn: Option<Conn> = None;
        let mut leases = Leases::default();
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut last: Option<Instant> = None;
        while rx.recv_many(&mut batch, self.max_batch).await > 0 {
            if let Some(due) = last.map(|l| l + self.guard.commit_interval)
                && due > Instant::now()
            {
                tokio::time::sleep_until(due.into()).await;
                while batch.len() < self.max_batch
                    && let Ok(op) = rx.try_recv()
                {
                    batch.push(op);
                }
            }
            let started = Instant::now();
            last = Some(started);
            let result = match conn.as_mut() {
                Some(c) => commit(c, &mut leases, &self.guard, &batch).await,
                None => match Conn::connect(&self.database, &self.guard.relay_id).await {
                    Ok(c) => commit(conn.insert(c), &mut leases, &self.guard, &batch).await,
                    Err(e) => Err(e),
                },
            };
            self.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
            self.metrics.commit_ops.observe(batch.len() as f64);
            match result {
                Ok(outcomes) => {
                    debug!(target: "beatstream::relay::writer", shard = self.shard, ops = batch.len(), "committed");
                    for (reply, outcome) in outcomes {
                        let _ = reply.send(outcome);
                    }
                    for op in batch.drain(..) {
                        if let Op::Open { done, .. } = op {
                            let _ = done.send(true);
                        }
                    }
                }
                Err(error) => {
                    self.metrics.commit_failures.inc();
                    warn!(target: "beatstream::relay::writer", shard = self.shard, ops = batch.len(), %error, "group commit failed");
                    // The connection may be broken; take a fresh one next time. What the transaction did is
                    // unknown, so the leases are read again.
                    conn = None;
                    leases = Leases::default();
                    for op in batch.drain(..) {
                        report_failure(op);
                    }
                }
            }
            batch.clear();
        }
    }
}

fn report_failure(op: Op) {
    match op {
        Op::Voucher { grant_id, payee, cumulative, reply, .. } => {
            let _ = reply.send(Outcome::Voucher {
                key: (grant_id, payee),
                cumulative,
                version: None,
                result: Err(Refusal::Storage),
            });
        }
        Op::Tip { tip, reply, .. } => {
            let _ = reply.send(Outcome::Tip {
                grant_id: tip.grant_id,
                tip_id: tip.tip_id,
                result: Err(Refusal::Storage),
            });
        }
        Op::YellowState { state, reply } => {
            let _ = reply.send(Outcome::Voucher {
                key: (state.app_session_id, state.payee),
                cumulative: state.paid,
                version: Some(state.version),
                result: Err(Refusal::Storage),
            });
        }
        Op::Update { update, reply: Some(reply) } => {
            let _ = reply.send(Outcome::Closed { session_id: update.session_id, amount: None });
        }
        Op::Open { done, .. } => {
            let _ = done.send(false);
        }
        Op::Update { reply: None, .. } => {}
    }
}

/// Runs one group commit and returns who to tell what.
///
/// A batch of vouchers that all fall within leases this writer holds is decided in memory and stored by one
/// statement ([`Conn::write_held`]), which writes nothing if a listener's guard epoch changed; those listeners are
/// then read again. Any other batch is one transaction: `BEGIN` with the advisory locks of the listeners to read,
/// the state read under them (and the epochs of the listeners decided on their leases), the pure decision, the
/// statements, `COMMIT`. On any error the caller drops the connection, which rolls the transaction back, and the
/// leases.
async fn commit(
    conn: &mut Conn,
    leases: &mut Leases,
    guard: &WriterConfig,
    batch: &[Op],
) -> Result<Vec<(Reply, Outcome)>> {
    let mut read = to_read(leases, batch);
    // An epoch that changed moves its listener to the read; at most every listener of the batch moves.
    loop {
        let held_only = read.is_empty() && batch.iter().all(|op| matches!(op, Op::Voucher { .. }));
        if held_only {
            let mut undo = Undo::default();
            let (outcomes, writes) =
                decide(leases, &mut State::default(), &read, guard, batch, &mut undo);
            let epochs = epochs_of(leases, batch);
            if writes.vouchers.is_empty() {
                return Ok(outcomes);
            }
            let changed = conn.write_held(guard.chain_id, &writes.vouchers, &epochs).await?;
            if changed.is_empty() {
                return Ok(outcomes);
            }
            leases.restore(undo);
            for listener in changed {
                leases.forget(&listener);
                read.insert(listener);
            }
            continue;
        }
        let mut keys = keys_of(leases, &read, batch);
        conn.begin_locked(&lock_keys(&keys.listeners)).await?;
        let mut state = conn.read_state(guard.chain_id, &keys).await?;
        let changed: Vec<Address> = keys
            .epochs
            .drain(..)
            .filter(|l| state.epochs.get(l).copied().unwrap_or(0) != leases.epoch(l).unwrap_or(-1))
            .collect();
        if !changed.is_empty() {
            conn.rollback().await?;
            for listener in changed {
                leases.forget(&listener);
                read.insert(listener);
            }
            continue;
        }
        // A listener read under its lock whose epoch moved since its other leases were taken gives them up: they
        // were sized on what changed.
        for listener in &keys.listeners {
            if leases.epoch(listener).is_some_and(|e| state.epochs.get(listener) != Some(&e)) {
                leases.forget(listener);
            }
        }
        let (outcomes, writes) =
            decide(leases, &mut state, &read, guard, batch, &mut Undo::default());
        let notify = !outcomes.is_empty() || !writes.opens.is_empty() || !writes.updates.is_empty();
        conn.write(guard.chain_id, writes).await?;
        conn.commit(notify).await?;
        return Ok(outcomes);
    }
}

/// The listeners of `batch` whose operations need the state read under their lock: a voucher not within a held
/// lease (as the batch takes from it in order), a Yellow state, or a session closing (its lease is given up).
fn to_read(leases: &Leases, batch: &[Op]) -> HashSet<Address> {
    let mut read = HashSet::new();
    let mut spent: HashMap<B256, U256> = HashMap::new();
    let mut pairs: HashMap<(B256, Address), U256> = HashMap::new();
    for op in batch {
        match op {
            Op::Voucher { grant_id, payee, listener, cumulative, .. } => {
                if read.contains(listener) || leases.epoch(listener).is_none() {
                    read.insert(*listener);
                    continue;
                }
                let key = (*grant_id, *payee);
                let taken = spent.get(grant_id).copied().unwrap_or_default();
                match leases.fast(&key, *cumulative, taken, pairs.get(&key).copied()) {
                    Fast::Accept(increase) => {
                        spent.insert(*grant_id, taken + increase);
                        pairs.insert(key, *cumulative);
                    }
                    Fast::Stale(_) => {}
                    Fast::Read => {
                        read.insert(*listener);
                    }
                }
            }
            Op::Tip { tip, .. } => {
                read.insert(tip.listener);
            }
            Op::YellowState { state, .. } => {
                read.insert(state.listener);
            }
            Op::Update { update, .. } if update.status == SessionStatus::Closed => {
                read.insert(update.listener);
            }
            Op::Update { .. } | Op::Open { .. } => {}
        }
    }
    read
}

/// The guard epochs the held-lease vouchers of `batch` were decided at.
fn epochs_of(leases: &Leases, batch: &[Op]) -> Vec<(Address, i64)> {
    let mut epochs: Vec<(Address, i64)> = batch
        .iter()
        .filter_map(|op| match op {
            Op::Voucher { listener, .. } => leases.epoch(listener).map(|e| (*listener, e)),
            _ => None,
        })
        .collect();
    epochs.sort_unstable();
    epochs.dedup();
    epochs
}

/// What the batch's state read must cover: everything of the listeners in `read`, the pairs of session changes
/// not held here, and the epochs of the listeners decided on their leases.
fn keys_of(leases: &Leases, read: &HashSet<Address>, batch: &[Op]) -> Keys {
    let mut keys = Keys::default();
    for op in batch {
        match op {
            Op::Voucher { grant_id, payee, listener, nonce, .. } if read.contains(listener) => {
                keys.listeners.push(*listener);
                keys.grants.push((*grant_id, *listener, *nonce));
                keys.pairs.push((*grant_id, *payee));
            }
            Op::Voucher { listener, .. } => keys.epochs.push(*listener),
            Op::Tip { tip, nonce, .. } => {
                keys.listeners.push(tip.listener);
                keys.grants.push((tip.grant_id, tip.listener, *nonce));
                keys.tips.push((tip.grant_id, tip.tip_id));
            }
            Op::YellowState { state, .. } => {
                // The listener's lock orders this against another relay storing the same session's versions.
                keys.listeners.push(state.listener);
                keys.pairs.push((state.app_session_id, state.payee));
                keys.apps.push(state.app_session_id);
            }
            Op::Update { update, .. } => {
                if read.contains(&update.listener)
                    || leases.pair(&(update.grant_id, update.payee)).is_none()
                {
                    keys.pairs.push((update.grant_id, update.payee));
                }
            }
            Op::Open { .. } => {}
        }
    }
    keys.dedup();
    keys
}

/// The balance guard's advisory lock keys: one per listener, ascending, without repeats.
fn lock_keys(listeners: &[Address]) -> Vec<i32> {
    let mut locks: Vec<i32> =
        listeners.iter().map(|l| i32::from_be_bytes([l[16], l[17], l[18], l[19]])).collect();
    locks.sort_unstable();
    locks.dedup();
    locks
}

/// Decides every operation of the batch in arrival order: who to tell what, and what to write. A voucher of a
/// listener in `read` is decided on `state` (read under its lock; advanced as vouchers are accepted) with every
/// other lease counted, and renews its grant's lease; any other voucher within its grant's held lease (what
/// [`to_read`] found). Pure: no I/O; what it takes from held leases is noted in `undo`.
fn decide<'a>(
    leases: &mut Leases,
    state: &mut State,
    read: &HashSet<Address>,
    guard: &WriterConfig,
    batch: &'a [Op],
    undo: &mut Undo,
) -> (Vec<(Reply, Outcome)>, Writes<'a>) {
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut writes = Writes::default();
    let mut touched = HashSet::new();
    for op in batch {
        match op {
            Op::Voucher { grant_id, payee, listener, cumulative, sig, reply, .. } => {
                let key = (*grant_id, *payee);
                let result = if read.contains(listener) {
                    touched.insert(*listener);
                    decide_on_state(leases, state, guard, op).map(|()| {
                        writes.vouchers.insert(key, (*listener, *cumulative, *sig));
                    })
                } else {
                    match leases.fast(&key, *cumulative, U256::ZERO, None) {
                        Fast::Accept(increase) => {
                            leases.take(key, *cumulative, increase, undo);
                            writes.vouchers.insert(key, (*listener, *cumulative, *sig));
                            Ok(())
                        }
                        Fast::Stale(stored) => Err(Refusal::Stale { stored }),
                        Fast::Read => {
                            // `to_read` put every listener whose voucher does not fit its lease in `read`, deciding
                            // the batch in the same order, so this cannot happen. Should it, nothing is stored and
                            // the player retries (`storage_unavailable`), which is safe; tests fail loudly.
                            debug_assert!(
                                false,
                                "a voucher outside its lease was not read: {key:?}"
                            );
                            Err(Refusal::Storage)
                        }
                    }
                };
                outcomes.push((
                    reply.clone(),
                    Outcome::Voucher { key, cumulative: *cumulative, version: None, result },
                ));
            }
            Op::Tip { tip, cap, reply, .. } => {
                touched.insert(tip.listener);
                let result = decide_tip(leases, state, tip, *cap).map(|new| {
                    if new {
                        writes.tips.push(tip);
                    }
                });
                outcomes.push((
                    reply.clone(),
                    Outcome::Tip { grant_id: tip.grant_id, tip_id: tip.tip_id, result },
                ));
            }
            Op::YellowState { state: row, reply } => {
                let app = state.apps.get(&row.app_session_id).copied().unwrap_or_default();
                let result = guard::check_yellow_state(app, row.version).map(|()| {
                    state.apps.insert(row.app_session_id, (row.version, true));
                    state.pairs.entry((row.app_session_id, row.payee)).or_default().voucher =
                        row.paid;
                    writes.yellow_states.push(row);
                });
                outcomes.push((
                    reply.clone(),
                    Outcome::Voucher {
                        key: (row.app_session_id, row.payee),
                        cumulative: row.paid,
                        version: Some(row.version),
                        result,
                    },
                ));
            }
            Op::Open { session, .. } => writes.opens.push(session),
            Op::Update { update, reply } => {
                let key = (update.grant_id, update.payee);
                let voucher = match state.pairs.get(&key) {
                    Some(pair) => pair.voucher,
                    None => leases.pair(&key).unwrap_or_default(),
                };
                let amount = voucher.saturating_sub(update.base);
                writes.updates.insert(update.session_id, (update, amount));
                if update.status == SessionStatus::Closed && !update.yellow {
                    leases.release(&update.grant_id);
                    touched.insert(update.listener);
                }
                if let Some(reply) = reply {
                    outcomes.push((
                        reply.clone(),
                        Outcome::Closed { session_id: update.session_id, amount: Some(amount) },
                    ));
                }
            }
        }
    }
    // Every lease of a listener read under its lock (or closing a session) is written as it now stands, so other
    // relays count what this one may still add, not what it held at its last read, nor leases it gave up.
    for listener in touched {
        writes.leases.insert(listener, leases.held_for(&listener));
    }
    (outcomes, writes)
}

/// Decides a voucher on the state read under its listener's lock, counting every other relay's leases and this
/// relay's other leases of the listener; if accepted, the grant's lease is renewed from what is left.
fn decide_on_state(
    leases: &mut Leases,
    state: &mut State,
    guard: &WriterConfig,
    op: &Op,
) -> std::result::Result<(), Refusal> {
    let Op::Voucher { grant_id, payee, listener, cap, cumulative, .. } = op else {
        return Err(Refusal::Storage);
    };
    let key = (*grant_id, *payee);
    let leased = state.leased_listener.get(listener).copied().unwrap_or_default()
        + leases.held_besides(listener, grant_id);
    let pair = state.pairs.entry(key).or_default();
    let funds = state.funds.entry(*listener).or_default();
    let counted = Funds { available: funds.available, owed: funds.owed.saturating_add(leased) };
    let total = state.totals.entry(*grant_id).or_default();
    let counted_total =
        total.saturating_add(state.leased_grant.get(grant_id).copied().unwrap_or_default());
    let revoked = state.revoked.get(grant_id).copied();
    match guard::check_voucher(revoked, *pair, counted, counted_total, *cap, *cumulative) {
        Ok(increase) => {
            let remaining =
                lease::lease_after(counted, counted_total, *cap, increase, guard.lease_multiple);
            funds.owed += increase;
            *total += increase;
            pair.voucher = *cumulative;
            if remaining.is_zero() {
                // Funds or cap run low: the grant's next voucher is decided on fresh state again.
                leases.release(grant_id);
            } else {
                let epoch = state.epochs.get(listener).copied().unwrap_or(0);
                leases.hold(*grant_id, *listener, remaining, epoch, (*payee, *cumulative));
            }
            Ok(())
        }
        Err(refusal @ Refusal::Stale { .. }) => {
            // What was read is the newest the pair has: a held grant's later vouchers start from it.
            leases.set_pair(key, pair.current());
            if let Some(epoch) = state.epochs.get(listener) {
                leases.set_epoch(listener, *epoch);
            }
            Err(refusal)
        }
        Err(refusal) => {
            // Revoked, or more than the funds or the cap allow: what is left of the lease is given back.
            leases.release(grant_id);
            Err(refusal)
        }
    }
}

/// Decides a tip on the state read under its listener's lock. This relay first gives up its leases for the
/// listener (a tip is rare; the listener's next voucher is read under the lock again and leases afresh), so what
/// the tip is checked against counts every relay's leases; other relays' leases are counted whole. `Ok(true)`: store
/// it; `Ok(false)`: the same tip is stored already.
fn decide_tip(
    leases: &mut Leases,
    state: &mut State,
    tip: &TipRow,
    cap: U256,
) -> std::result::Result<bool, Refusal> {
    leases.forget(&tip.listener);
    let funds = state.funds.entry(tip.listener).or_default();
    let leased = state.leased_listener.get(&tip.listener).copied().unwrap_or_default();
    let counted = Funds { available: funds.available, owed: funds.owed.saturating_add(leased) };
    let total = state.totals.entry(tip.grant_id).or_default();
    let counted_total =
        total.saturating_add(state.leased_grant.get(&tip.grant_id).copied().unwrap_or_default());
    let this = StoredTip {
        payee: tip.payee,
        amount: tip.amount,
        message: alloy::primitives::keccak256(&tip.message),
    };
    let key = (tip.grant_id, tip.tip_id);
    let stored = state.tips.get(&key).copied();
    let revoked = state.revoked.get(&tip.grant_id).copied();
    let new = guard::check_tip(revoked, stored, this, counted, counted_total, cap)?;
    if new {
        funds.owed += tip.amount;
        *total += tip.amount;
        state.tips.insert(key, this);
    }
    Ok(new)
}

/// Runs `f` on a new thread named `name`; if it panics, `on_panic` is cancelled before the thread ends.
fn spawn_thread(
    name: String,
    on_panic: CancellationToken,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    /// Cancels the token when dropped by an unwinding thread.
    struct PanicGuard(CancellationToken);
    impl Drop for PanicGuard {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.cancel();
            }
        }
    }
    std::thread::Builder::new().name(name).spawn(move || {
        let _guard = PanicGuard(on_panic);
        f();
    })
}

/// Waits for the writer threads to end; the first one that panicked is returned as
/// [`Error::WriterPanicked`] with its cause.
pub fn join(threads: Vec<JoinHandle<()>>) -> Result<()> {
    let mut first = None;
    for (shard, thread) in threads.into_iter().enumerate() {
        if let Err(payload) = thread.join() {
            let cause = panic_message(payload.as_ref());
            error!(target: "beatstream::relay::writer", shard, %cause, "writer panicked");
            first.get_or_insert(Error::WriterPanicked { shard, cause });
        }
    }
    first.map_or(Ok(()), Err)
}

/// The message a panic was raised with.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::guard::{Funds, PairState};

    const LISTENER: Address = Address::repeat_byte(0x11);
    const GRANT: B256 = B256::repeat_byte(0x22);

    fn voucher(payee: u8, cumulative: u64, reply: &Reply) -> Op {
        Op::Voucher {
            grant_id: GRANT,
            payee: Address::repeat_byte(payee),
            listener: LISTENER,
            nonce: 0,
            cap: U256::from(1_000_000u64),
            cumulative: U256::from(cumulative),
            sig: [0; 65],
            reply: reply.clone(),
        }
    }

    /// Decides `batch` with every listener read under its lock, as a first commit does.
    fn decide_all<'a>(state: &mut State, batch: &'a [Op]) -> (Vec<(Reply, Outcome)>, Writes<'a>) {
        let guard = WriterConfig {
            commit_interval: std::time::Duration::ZERO,
            chain_id: 1,
            relay_id: "test".into(),
            lease_multiple: 60,
        };
        let read = HashSet::from([LISTENER]);
        decide(&mut Leases::default(), state, &read, &guard, batch, &mut Undo::default())
    }

    fn state(available: u64, owed: u64, stored: &[(u8, u64)]) -> State {
        let mut state = State::default();
        state
            .funds
            .insert(LISTENER, Funds { available: U256::from(available), owed: U256::from(owed) });
        for (payee, voucher) in stored {
            let pair = PairState { voucher: U256::from(*voucher), settled: U256::ZERO };
            state.pairs.insert((GRANT, Address::repeat_byte(*payee)), pair);
        }
        state.totals.insert(GRANT, stored.iter().map(|(_, v)| U256::from(*v)).sum());
        state
    }

    fn tip(tip_id: u64, amount: u64, message: &str, reply: &Reply) -> Op {
        Op::Tip {
            tip: TipRow {
                grant_id: GRANT,
                tip_id: U256::from(tip_id),
                listener: LISTENER,
                payee: Address::repeat_byte(1),
                amount: U256::from(amount),
                message: message.as_bytes().to_vec(),
                sig: [0; 65],
            },
            nonce: 0,
            cap: U256::from(1_000_000u64),
            reply: reply.clone(),
        }
    }

    fn results(outcomes: &[(Reply, Outcome)]) -> Vec<std::result::Result<(), Refusal>> {
        outcomes
            .iter()
            .map(|(_, o)| match o {
                Outcome::Voucher { result, .. } | Outcome::Tip { result, .. } => result.clone(),
                Outcome::Closed { .. } => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn tips_and_vouchers_of_a_batch_share_the_funds_and_a_tip_id_is_taken_once() {
        let (reply, _rx) = mpsc::unbounded_channel();
        // 100 available: a 60 tip, then a voucher of 50 does not fit, one of 40 does; the same tip again is acked
        // without a second write, another tip under its id is refused.
        let batch = [
            tip(1, 60, "thanks", &reply),
            voucher(1, 50, &reply),
            voucher(1, 40, &reply),
            tip(1, 60, "thanks", &reply),
            tip(1, 60, "merci", &reply),
        ];
        let mut st = state(100, 0, &[]);
        let (outcomes, writes) = decide_all(&mut st, &batch);
        assert_eq!(
            results(&outcomes),
            [
                Ok(()),
                Err(Refusal::InsufficientFunds {
                    available: U256::from(40),
                    needed: U256::from(50)
                }),
                Ok(()),
                Ok(()),
                Err(Refusal::DuplicateTip),
            ]
        );
        assert_eq!(writes.tips.len(), 1);
        assert_eq!(st.funds[&LISTENER].owed, U256::from(100));
        assert_eq!(st.totals[&GRANT], U256::from(100));
    }

    #[test]
    fn later_vouchers_of_a_batch_see_the_earlier_ones() {
        let (reply, _rx) = mpsc::unbounded_channel();
        // 100 available: 60 then 40 more on another payee fit, a third 1 does not.
        let batch = [voucher(1, 60, &reply), voucher(2, 40, &reply), voucher(1, 61, &reply)];
        let mut st = state(100, 0, &[]);
        let (outcomes, writes) = decide_all(&mut st, &batch);
        let results: Vec<_> = outcomes
            .iter()
            .map(|(_, o)| match o {
                Outcome::Voucher { result, .. } | Outcome::Tip { result, .. } => result.clone(),
                Outcome::Closed { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(results[..2], [Ok(()), Ok(())]);
        assert_eq!(
            results[2],
            Err(Refusal::InsufficientFunds { available: U256::ZERO, needed: U256::from(1) })
        );
        assert_eq!(writes.vouchers.len(), 2);
        assert_eq!(st.funds[&LISTENER].owed, U256::from(100));
    }

    #[test]
    fn a_closing_session_is_told_what_it_paid_in_this_batch() {
        let (reply, mut rx) = mpsc::unbounded_channel();
        let update = SessionUpdate {
            session_id: Uuid::nil(),
            grant_id: GRANT,
            payee: Address::repeat_byte(1),
            listener: LISTENER,
            base: U256::from(10),
            seconds: 3,
            status: SessionStatus::Closed,
            reason: Some(CloseReason::Stopped),
            yellow: false,
        };
        let batch = [voucher(1, 40, &reply), Op::Update { update, reply: Some(reply.clone()) }];
        let (outcomes, writes) = decide_all(&mut state(100, 10, &[(1, 10)]), &batch);
        assert_eq!(
            outcomes[1].1,
            Outcome::Closed { session_id: Uuid::nil(), amount: Some(U256::from(30)) }
        );
        assert_eq!(writes.updates[&Uuid::nil()].1, U256::from(30));
        assert!(rx.try_recv().is_err(), "nothing is sent before the commit");
    }

    #[test]
    fn lock_keys_are_sorted_and_unique() {
        let a = Address::repeat_byte(2);
        let b = Address::repeat_byte(1);
        assert_eq!(lock_keys(&[a, b, a]), vec![0x0101_0101, 0x0202_0202]);
    }

    #[test]
    fn a_writer_panic_stops_the_relay_with_its_cause() {
        let token = CancellationToken::new();
        let quiet = spawn_thread("quiet".into(), token.clone(), || {}).unwrap();
        let failing =
            spawn_thread("failing".into(), token.clone(), || panic!("disk on fire")).unwrap();
        let err = join(vec![quiet, failing]).unwrap_err();
        assert!(token.is_cancelled());
        assert!(
            matches!(&err, Error::WriterPanicked { shard: 1, cause } if cause == "disk on fire"),
            "{err:?}"
        );
        assert_eq!(err.code(), "internal");
    }

    proptest! {
        /// Whatever arrives in one batch, the accepted vouchers never owe more than the listener's available funds,
        /// and no pair's stored cumulative ever goes down.
        #[test]
        fn a_batch_never_overspends_nor_lowers(
            available in 0u64..2_000,
            owed in 0u64..1_000,
            stored in proptest::collection::vec((0u8..3, 0u64..500), 0..3),
            ops in proptest::collection::vec((0u8..3, 0u64..1_500), 1..24),
        ) {
            let (reply, _rx) = mpsc::unbounded_channel();
            let batch: Vec<Op> = ops.iter().map(|(p, c)| voucher(*p, *c, &reply)).collect();
            let mut st = state(available, owed, &stored);
            let before: HashMap<_, _> = st.pairs.iter().map(|(k, v)| (*k, v.current())).collect();
            let (_, writes) = decide_all(&mut st, &batch);
            let funds = st.funds[&LISTENER];
            prop_assert!(funds.owed <= funds.available.max(U256::from(owed)));
            let mut added = U256::ZERO;
            for (key, (_, cumulative, _)) in &writes.vouchers {
                let old = before.get(key).copied().unwrap_or_default();
                prop_assert!(*cumulative > old);
                added += *cumulative - old;
            }
            prop_assert_eq!(U256::from(owed) + added, funds.owed);
            if added > U256::ZERO {
                prop_assert!(funds.owed <= funds.available);
            }
        }
    }
}
