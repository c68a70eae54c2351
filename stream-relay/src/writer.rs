//! Group commit: vouchers and session changes of many connections, written in one transaction per batch.
//!
//! Each writer task owns one Postgres connection and commits whatever queued up while its previous commit ran, so
//! batches grow with load and a quiet relay commits at once. Listeners are sharded across writers, so one
//! listener's operations stay in order.
//!
//! The balance guard lives in the transaction: it takes a transaction-scoped advisory lock per listener (sorted, so
//! two relays never deadlock), reads the listener's available funds, everything its stored vouchers owe and whether
//! the grant is revoked ([`crate::guard`]), and accepts a voucher only while its grant is not revoked and
//! `owed + increase <= available`. Every relay sharing the database takes the same locks, so one listener cannot
//! overspend across relays, and a revocation the indexer stored before the commit stops the voucher. A voucher's
//! outcome is reported after the commit.

use std::{
    collections::{HashMap, HashSet},
    time::Instant,
};

use alloy::primitives::{Address, B256, U256};
use sqlx::{Connection, PgConnection};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};
use uuid::Uuid;

use crate::{
    Result,
    guard::{self, Keys, Revocation},
    metrics::Metrics,
};

/// Advisory lock class of the per-listener balance guard ("BSR1").
const LOCK_CLASS: i32 = 0x4253_5231;

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

/// A session row to insert.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// Its id.
    pub session_id: Uuid,
    /// The grant.
    pub grant_id: B256,
    /// The listener.
    pub listener: Address,
    /// The payee.
    pub payee: Address,
    /// The artist's node.
    pub artist_node: B256,
    /// The track.
    pub track_id: U256,
    /// Base units per second.
    pub rate: U256,
    /// The pair's cumulative when the session started.
    pub base: U256,
    /// The relay instance.
    pub relay_id: String,
    /// For a Yellow session, its app session (created and funded on the node) and deposit state.
    pub yellow: Option<Box<YellowOpenRow>>,
}

/// A Yellow app session to record with its session.
#[derive(Clone, Debug)]
pub struct YellowOpenRow {
    /// The operator wallet.
    pub operator: Address,
    /// Asset symbol.
    pub asset: String,
    /// The definition as JSON.
    pub definition: String,
    /// Deposit in base units.
    pub deposit: U256,
    /// The deposit state (version 2).
    pub state: YellowStateRow,
}

/// One signed Yellow state.
#[derive(Clone, Debug)]
pub struct YellowStateRow {
    /// The app session.
    pub app_session_id: B256,
    /// Its payee.
    pub payee: Address,
    /// Its listener (the writer shard key).
    pub listener: Address,
    /// The state's version.
    pub version: u64,
    /// 0 operate, 1 deposit.
    pub intent: u8,
    /// The update as JSON, exactly as signed.
    pub update: String,
    /// The payee's allocation in base units.
    pub paid: U256,
    /// The listener's quorum signature.
    pub sig: [u8; 66],
    /// The listener's signature of the close that follows.
    pub close_sig: [u8; 66],
}

/// A change of a session row.
#[derive(Clone, Debug)]
pub struct SessionUpdate {
    /// The session.
    pub session_id: Uuid,
    /// Its grant.
    pub grant_id: B256,
    /// Its payee.
    pub payee: Address,
    /// Its listener (the writer shard key).
    pub listener: Address,
    /// The pair's cumulative when it started.
    pub base: U256,
    /// Seconds played.
    pub seconds: u32,
    /// `live`, `paused` or `closed`.
    pub status: &'static str,
    /// Why it closed.
    pub reason: Option<&'static str>,
    /// A Yellow session: closing it stores the close of its app session.
    pub yellow: bool,
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
    /// A session was closed; `amount` is what its vouchers paid, `None` if the commit failed.
    Closed {
        /// The session.
        session_id: Uuid,
        /// Paid in this session.
        amount: Option<U256>,
    },
}

/// Why the writer refused a voucher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The pair already has this cumulative or more (stored by another relay, or settled).
    Stale {
        /// What the pair has.
        stored: U256,
    },
    /// The listener cannot pay it.
    InsufficientFunds {
        /// Funds not yet owed.
        available: U256,
        /// The increase asked for.
        needed: U256,
    },
    /// The grant's vouchers would pass its cap.
    CapExceeded {
        /// The cap.
        cap: U256,
        /// The total it would reach.
        total: U256,
    },
    /// The grant is revoked (by id or by the listener's nonce floor), as the indexer mirrors it.
    Revoked(Revocation),
    /// The Yellow app session is not at the version before this state (or no longer open).
    Version {
        /// The version it expects next; zero when it is closed.
        expected: u64,
    },
    /// The commit failed; nothing was stored.
    Storage,
}

/// Sends operations to the writers.
#[derive(Clone, Debug)]
pub struct Writers {
    shards: Vec<mpsc::Sender<Op>>,
}

impl Writers {
    /// Starts `count` writers, each on its own thread with its own runtime and Postgres connection, so a commit's
    /// round trips never queue behind thousands of connection tasks. They run until every [`Writers`] clone is
    /// dropped and their queues are drained.
    pub fn spawn(
        database_url: String,
        chain_id: i64,
        count: usize,
        max_batch: usize,
        metrics: Metrics,
    ) -> std::io::Result<(Self, Vec<std::thread::JoinHandle<()>>)> {
        let mut shards = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for shard in 0..count {
            let (tx, rx) = mpsc::channel(max_batch * 4);
            let writer = Writer {
                database_url: database_url.clone(),
                chain_id,
                max_batch,
                metrics: metrics.clone(),
                shard,
            };
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let thread = std::thread::Builder::new()
                .name(format!("relay-writer-{shard}"))
                .spawn(move || runtime.block_on(writer.run(rx)))?;
            threads.push(thread);
            shards.push(tx);
        }
        Ok((Self { shards }, threads))
    }

    /// Queues `op` on its listener's writer; waits while that queue is full.
    pub async fn submit(&self, op: Op) -> Result<()> {
        let listener = match &op {
            Op::Voucher { listener, .. } => *listener,
            Op::YellowState { state, .. } => state.listener,
            Op::Open { session, .. } => session.listener,
            Op::Update { update, .. } => update.listener,
        };
        let shard = listener[19] as usize % self.shards.len();
        self.shards[shard].send(op).await.map_err(|_| crate::Error::StorageUnavailable)
    }
}

struct Writer {
    database_url: String,
    chain_id: i64,
    max_batch: usize,
    metrics: Metrics,
    shard: usize,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Op>) {
        let mut conn: Option<PgConnection> = None;
        let mut batch = Vec::with_capacity(self.max_batch);
        while rx.recv_many(&mut batch, self.max_batch).await > 0 {
            let started = Instant::now();
            let result = match conn.as_mut() {
                Some(c) => commit(c, self.chain_id, &batch).await,
                None => match connect(&self.database_url).await {
                    Ok(c) => commit(conn.insert(c), self.chain_id, &batch).await,
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
                    // The connection may be broken; take a fresh one next time.
                    conn = None;
                    for op in batch.drain(..) {
                        report_failure(op);
                    }
                }
            }
            batch.clear();
        }
    }
}

/// A writer's connection. The hot statements (the state read and the voucher upsert) are equality lookups on
/// primary keys and indexes whatever the table sizes, so they keep one generic plan instead of being planned on
/// every commit. Statements on `sessions` are planned per commit (see [`commit`]).
async fn connect(url: &str) -> Result<PgConnection> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query("SET plan_cache_mode = force_generic_plan").execute(&mut conn).await?;
    Ok(conn)
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

/// Stores the close of each Yellow app session in $1 that is still open: the newest state with intent close and
/// version + 1, signed by the listener's pre-signed close (the operator co-signs at submission).
pub(crate) const STORE_YELLOW_CLOSES: &str = "
    WITH closing AS (
        UPDATE yellow_app_sessions y SET status = 'closing', version = y.version + 1, updated_at = now()
        FROM unnest($1::bytea[]) AS t(id)
        WHERE y.app_session_id = t.id AND y.status = 'open'
        RETURNING y.app_session_id, y.version)
    INSERT INTO yellow_states (app_session_id, version, intent, \"update\", listener_sig)
    SELECT s.app_session_id, c.version, 3,
           jsonb_set(jsonb_set(s.\"update\", '{intent}', '3'), '{version}', to_jsonb(c.version::text)),
           s.close_sig
    FROM closing c JOIN yellow_states s ON s.app_session_id = c.app_session_id AND s.version = c.version - 1";

/// The voucher upsert: never lowers a cumulative.
const UPSERT_VOUCHERS: &str = "
    INSERT INTO vouchers (grant_id, payee, listener, cumulative, signature)
    SELECT g, p, l, c::numeric, s FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::text[], $5::bytea[])
           AS u(g, p, l, c, s)
    ON CONFLICT (grant_id, payee) DO UPDATE
       SET cumulative = EXCLUDED.cumulative, signature = EXCLUDED.signature, updated_at = now()
       WHERE vouchers.cumulative < EXCLUDED.cumulative";

/// Runs one group commit and returns who to tell what.
///
/// Four round trips in the steady state: `BEGIN` with the locks, the state read, the upsert, `COMMIT`; session
/// changes add theirs. On any error the caller drops
/// the connection, which rolls the transaction back.
async fn commit(
    conn: &mut PgConnection,
    chain_id: i64,
    batch: &[Op],
) -> Result<Vec<(Reply, Outcome)>> {
    let mut keys = Keys::default();
    for op in batch {
        match op {
            Op::Voucher { grant_id, payee, listener, nonce, .. } => {
                keys.listeners.push(*listener);
                keys.grants.push((*grant_id, *listener, *nonce));
                keys.pairs.push((*grant_id, *payee));
            }
            Op::YellowState { state, .. } => {
                // The listener's lock orders this against another relay storing the same session's versions.
                keys.listeners.push(state.listener);
                keys.pairs.push((state.app_session_id, state.payee));
                keys.apps.push(state.app_session_id);
            }
            Op::Update { update, .. } => keys.pairs.push((update.grant_id, update.payee)),
            Op::Open { .. } => {}
        }
    }
    keys.dedup();

    // The balance guard: one lock per listener, always taken in ascending key order. The keys are integers, so
    // they go into the simple-query text with BEGIN: one round trip.
    let mut locks: Vec<i32> =
        keys.listeners.iter().map(|l| i32::from_be_bytes([l[16], l[17], l[18], l[19]])).collect();
    locks.sort_unstable();
    locks.dedup();
    let begin = if locks.is_empty() {
        "BEGIN".to_owned()
    } else {
        let list: Vec<String> = locks.iter().map(i32::to_string).collect();
        format!(
            "BEGIN; SELECT count(pg_advisory_xact_lock({LOCK_CLASS}, k)) FROM unnest('{{{}}}'::int4[]) AS k",
            list.join(",")
        )
    };
    sqlx::raw_sql(&begin).execute(&mut *conn).await?;

    // State as of now, under the locks (a new statement, so a new snapshot): funds, debts, totals, revocations.
    let mut state = guard::read(&mut *conn, chain_id, &keys).await?;

    // Decide, in arrival order.
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut upserts: HashMap<(B256, Address), (Address, U256, [u8; 65])> = HashMap::new();
    let mut yellow_states: Vec<&YellowStateRow> = Vec::new();
    let mut opens: Vec<&NewSession> = Vec::new();
    let mut updates: HashMap<Uuid, (&SessionUpdate, U256)> = HashMap::new();
    for op in batch {
        match op {
            Op::Voucher { grant_id, payee, listener, cap, cumulative, sig, reply, .. } => {
                let pair = state.pairs.entry((*grant_id, *payee)).or_default();
                let funds = state.funds.entry(*listener).or_default();
                let total = state.totals.entry(*grant_id).or_default();
                let revoked = state.revoked.get(grant_id).copied();
                let result =
                    guard::check_voucher(revoked, *pair, *funds, *total, *cap, *cumulative).map(
                        |increase| {
                            funds.owed += increase;
                            *total += increase;
                            pair.voucher = *cumulative;
                            upserts.insert((*grant_id, *payee), (*listener, *cumulative, *sig));
                        },
                    );
                outcomes.push((
                    reply.clone(),
                    Outcome::Voucher {
                        key: (*grant_id, *payee),
                        cumulative: *cumulative,
                        version: None,
                        result,
                    },
                ));
            }
            Op::YellowState { state: row, reply } => {
                let (current, open) =
                    state.apps.get(&row.app_session_id).copied().unwrap_or_default();
                let result = if !open || row.version != current + 1 {
                    Err(Refusal::Version { expected: if open { current + 1 } else { 0 } })
                } else {
                    state.apps.insert(row.app_session_id, (row.version, true));
                    state.pairs.entry((row.app_session_id, row.payee)).or_default().voucher =
                        row.paid;
                    yellow_states.push(row);
                    Ok(())
                };
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
            Op::Open { session, .. } => opens.push(session),
            Op::Update { update, reply } => {
                let voucher = state.pairs.get(&(update.grant_id, update.payee)).map(|p| p.voucher);
                let amount = voucher.unwrap_or_default().saturating_sub(update.base);
                updates.insert(update.session_id, (update, amount));
                if let Some(reply) = reply {
                    outcomes.push((
                        reply.clone(),
                        Outcome::Closed { session_id: update.session_id, amount: Some(amount) },
                    ));
                }
            }
        }
    }

    if !upserts.is_empty() {
        let rows: Vec<_> = upserts.into_iter().collect();
        sqlx::query(UPSERT_VOUCHERS)
            .bind(rows.iter().map(|((g, _), _)| g.to_vec()).collect::<Vec<_>>())
            .bind(rows.iter().map(|((_, p), _)| p.to_vec()).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, (l, _, _))| l.to_vec()).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, (_, c, _))| c.to_string()).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, (_, _, s))| s.to_vec()).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
    }

    let yellow_opens: Vec<&YellowOpenRow> =
        opens.iter().filter_map(|s| s.yellow.as_deref()).collect();
    if !yellow_opens.is_empty() {
        sqlx::query(
            "INSERT INTO yellow_app_sessions (app_session_id, listener, payee, operator, asset, definition, deposit,
                                              version, submitted, relay_id)
             SELECT i, l, p, o, a, d::jsonb, dep::numeric, 2, 2, r
             FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[], $5::text[], $6::text[], $7::text[],
                         $8::text[]) AS u(i, l, p, o, a, d, dep, r)
             ON CONFLICT (app_session_id) DO NOTHING",
        )
        .bind(yellow_opens.iter().map(|y| y.state.app_session_id.to_vec()).collect::<Vec<_>>())
        .bind(yellow_opens.iter().map(|y| y.state.listener.to_vec()).collect::<Vec<_>>())
        .bind(yellow_opens.iter().map(|y| y.state.payee.to_vec()).collect::<Vec<_>>())
        .bind(yellow_opens.iter().map(|y| y.operator.to_vec()).collect::<Vec<_>>())
        .bind(yellow_opens.iter().map(|y| y.asset.clone()).collect::<Vec<_>>())
        .bind(yellow_opens.iter().map(|y| y.definition.clone()).collect::<Vec<_>>())
        .bind(yellow_opens.iter().map(|y| y.deposit.to_string()).collect::<Vec<_>>())
        .bind(
            opens
                .iter()
                .filter(|s| s.yellow.is_some())
                .map(|s| s.relay_id.clone())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *conn)
        .await?;
        yellow_states.extend(yellow_opens.iter().map(|y| &y.state));
    }
    if !yellow_states.is_empty() {
        // Newest per session first into the session row; every state into the submission queue.
        let mut newest: HashMap<B256, &YellowStateRow> = HashMap::new();
        for s in &yellow_states {
            let e = newest.entry(s.app_session_id).or_insert(s);
            if s.version > e.version {
                *e = s;
            }
        }
        let newest: Vec<&YellowStateRow> = newest.into_values().collect();
        sqlx::query(
            "UPDATE yellow_app_sessions y SET version = u.v, paid = u.p::numeric, updated_at = now()
             FROM unnest($1::bytea[], $2::int8[], $3::text[]) AS u(i, v, p)
             WHERE y.app_session_id = u.i AND y.version <= u.v",
        )
        .bind(newest.iter().map(|s| s.app_session_id.to_vec()).collect::<Vec<_>>())
        .bind(newest.iter().map(|s| s.version as i64).collect::<Vec<_>>())
        .bind(newest.iter().map(|s| s.paid.to_string()).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO yellow_states (app_session_id, version, intent, \"update\", listener_sig, close_sig)
             SELECT i, v, n, u::jsonb, s, c
             FROM unnest($1::bytea[], $2::int8[], $3::int2[], $4::text[], $5::bytea[], $6::bytea[])
                  AS t(i, v, n, u, s, c)
             ON CONFLICT (app_session_id, version) DO NOTHING",
        )
        .bind(yellow_states.iter().map(|s| s.app_session_id.to_vec()).collect::<Vec<_>>())
        .bind(yellow_states.iter().map(|s| s.version as i64).collect::<Vec<_>>())
        .bind(yellow_states.iter().map(|s| i16::from(s.intent)).collect::<Vec<_>>())
        .bind(yellow_states.iter().map(|s| s.update.clone()).collect::<Vec<_>>())
        .bind(yellow_states.iter().map(|s| s.sig.to_vec()).collect::<Vec<_>>())
        .bind(yellow_states.iter().map(|s| s.close_sig.to_vec()).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }

    if !opens.is_empty() || !updates.is_empty() {
        // `sessions` grows from empty; a generic plan made then would scan every live session on each commit
        // (seconds at 10,000 sessions) until autoanalyze. These rarer statements are planned afresh.
        sqlx::raw_sql("SET LOCAL plan_cache_mode = force_custom_plan").execute(&mut *conn).await?;
    }
    if !opens.is_empty() {
        let live_pairs: HashSet<(B256, Address)> =
            opens.iter().map(|s| (s.grant_id, s.payee)).collect();
        sqlx::query(
            "UPDATE sessions AS s
             SET status = 'closed', close_reason = 'superseded', ended_at = now(), updated_at = now()
             FROM unnest($1::bytea[], $2::bytea[]) AS t(g, p)
             WHERE s.ended_at IS NULL AND s.grant_id = t.g AND s.payee = t.p",
        )
        .bind(live_pairs.iter().map(|(g, _)| g.to_vec()).collect::<Vec<_>>())
        .bind(live_pairs.iter().map(|(_, p)| p.to_vec()).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO sessions (session_id, grant_id, listener, payee, artist_node, track_id, rate_per_second,
                                   base_cumulative, status, relay_id, channel)
             SELECT id::uuid, g, l, p, n, t::numeric, r::numeric, b::numeric, 'live', relay,
                    CASE WHEN y THEN 'yellow' ELSE 'vault' END
             FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[], $6::text[], $7::text[],
                         $8::text[], $9::text[], $10::bool[]) AS u(id, g, l, p, n, t, r, b, relay, y)",
        )
        .bind(opens.iter().map(|s| s.session_id.to_string()).collect::<Vec<_>>())
        .bind(opens.iter().map(|s| s.grant_id.to_vec()).collect::<Vec<_>>())
        .bind(opens.iter().map(|s| s.listener.to_vec()).collect::<Vec<_>>())
        .bind(opens.iter().map(|s| s.payee.to_vec()).collect::<Vec<_>>())
        .bind(opens.iter().map(|s| s.artist_node.to_vec()).collect::<Vec<_>>())
        .bind(opens.iter().map(|s| s.track_id.to_string()).collect::<Vec<_>>())
        .bind(opens.iter().map(|s| s.rate.to_string()).collect::<Vec<_>>())
        .bind(opens.iter().map(|s| s.base.to_string()).collect::<Vec<_>>())
        .bind(opens.iter().map(|s| s.relay_id.clone()).collect::<Vec<_>>())
        .bind(opens.iter().map(|s| s.yellow.is_some()).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    let updates_empty = updates.is_empty();
    if !updates.is_empty() {
        let updates: Vec<_> = updates.into_values().collect();
        let closes: Vec<Vec<u8>> = updates
            .iter()
            .filter(|(u, _)| u.yellow && u.status == "closed")
            .map(|(u, _)| u.grant_id.to_vec())
            .collect();
        if !closes.is_empty() {
            sqlx::query(STORE_YELLOW_CLOSES).bind(closes).execute(&mut *conn).await?;
        }
        sqlx::query(
            "UPDATE sessions AS s
             SET seconds = u.seconds, amount = u.amount::numeric, status = u.status, close_reason = u.reason,
                 ended_at = CASE WHEN u.status = 'closed' THEN coalesce(s.ended_at, now()) END,
                 updated_at = now()
             FROM unnest($1::text[], $2::int4[], $3::text[], $4::text[], $5::text[])
                  AS u(id, seconds, amount, status, reason)
             WHERE s.session_id = u.id::uuid",
        )
        .bind(updates.iter().map(|(u, _)| u.session_id.to_string()).collect::<Vec<_>>())
        .bind(updates.iter().map(|(u, _)| u.seconds.min(i32::MAX as u32) as i32).collect::<Vec<_>>())
        .bind(updates.iter().map(|(_, a)| a.to_string()).collect::<Vec<_>>())
        .bind(updates.iter().map(|(u, _)| u.status.to_owned()).collect::<Vec<_>>())
        .bind(updates.iter().map(|(u, _)| u.reason.map(str::to_owned)).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }

    // Tell LISTENers (the GraphQL API's live sessions) once per commit; delivered at commit, coalesced by Postgres.
    let wrote = !outcomes.is_empty() || !opens.is_empty() || !updates_empty;
    sqlx::raw_sql(if wrote {
        "SELECT pg_notify('beatstream_vouchers', ''); COMMIT"
    } else {
        "COMMIT"
    })
    .execute(&mut *conn)
    .await?;
    Ok(outcomes)
}
