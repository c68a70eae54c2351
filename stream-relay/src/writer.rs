//! Group commit: vouchers and session changes of many connections, written in one transaction per batch.
//!
//! Each writer task owns one Postgres connection and commits whatever queued up while its previous commit ran, so
//! batches grow with load and a quiet relay commits at once. Listeners are sharded across writers, so one
//! listener's operations stay in order.
//!
//! The balance guard lives in the transaction: it takes a transaction-scoped advisory lock per listener (sorted, so
//! two relays never deadlock), reads the listener's funds and everything its stored vouchers owe, and accepts a
//! voucher only while `owed + increase <= available + thawing`. Every relay sharing the database takes the same
//! locks, so one listener cannot overspend across relays. A voucher's outcome is reported after the commit.

use std::{
    collections::{HashMap, HashSet},
    time::Instant,
};

use alloy::primitives::{Address, B256, U256};
use sqlx::{Connection, PgConnection};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};
use uuid::Uuid;

use crate::{Result, metrics::Metrics, store::parse_amount};

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
        /// The grant's cap, clamped as the vault clamps it.
        cap: U256,
        /// The cumulative.
        cumulative: U256,
        /// The session key's signature.
        sig: [u8; 65],
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
}

/// What became of an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A voucher was stored (`Ok`) or refused.
    Voucher {
        /// The payee.
        payee: Address,
        /// The cumulative.
        cumulative: U256,
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
        Op::Voucher { payee, cumulative, reply, .. } => {
            let _ =
                reply.send(Outcome::Voucher { payee, cumulative, result: Err(Refusal::Storage) });
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

/// The pair's stored voucher and settled amount.
#[derive(Clone, Copy, Default)]
struct PairState {
    voucher: U256,
    settled: U256,
}

impl PairState {
    fn current(self) -> U256 {
        self.voucher.max(self.settled)
    }
}

/// One row of the combined read: `p` (grant, payee, voucher, settled), `l` (listener, funds, owed) or `g` (grant,
/// total).
type StateRow = (String, Vec<u8>, Option<Vec<u8>>, Option<String>, Option<String>);

/// Everything the guard needs, under the locks, in one statement ($1 chain id; pairs $2/$3; listeners $4;
/// grants $5). Settled amounts are looked up per pair, never hashed over the whole table.
const READ_STATE: &str = "
    SELECT 'p', t.g, t.p,
           (SELECT v.cumulative::text FROM vouchers v WHERE v.grant_id = t.g AND v.payee = t.p),
           (SELECT s.cumulative::text FROM settled_pairs s
            WHERE s.chain_id = $1 AND s.grant_id = t.g AND s.payee = t.p)
    FROM unnest($2::bytea[], $3::bytea[]) AS t(g, p)
    UNION ALL
    SELECT 'l', t.l, NULL,
           (SELECT (a.available + a.thawing)::text FROM listener_accounts a
            WHERE a.chain_id = $1 AND a.listener = t.l),
           (SELECT coalesce(sum(greatest(v.cumulative - coalesce(
                       (SELECT s.cumulative FROM settled_pairs s
                        WHERE s.chain_id = $1 AND s.grant_id = v.grant_id AND s.payee = v.payee), 0), 0)), 0)::text
            FROM vouchers v WHERE v.listener = t.l)
    FROM unnest($4::bytea[]) AS t(l)
    UNION ALL
    SELECT 'g', t.g, NULL,
           (SELECT coalesce(sum(greatest(coalesce(v.cumulative, 0), coalesce(s.cumulative, 0))), 0)::text
            FROM (SELECT payee, cumulative FROM vouchers WHERE grant_id = t.g) v
            FULL JOIN (SELECT payee, cumulative FROM settled_pairs WHERE chain_id = $1 AND grant_id = t.g) s
            USING (payee)),
           NULL
    FROM unnest($5::bytea[]) AS t(g)";

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
    let mut listeners: Vec<Address> = Vec::new();
    let mut grants: Vec<B256> = Vec::new();
    let mut pairs: Vec<(B256, Address)> = Vec::new();
    for op in batch {
        match op {
            Op::Voucher { grant_id, payee, listener, .. } => {
                listeners.push(*listener);
                grants.push(*grant_id);
                pairs.push((*grant_id, *payee));
            }
            Op::Update { update, .. } => pairs.push((update.grant_id, update.payee)),
            Op::Open { .. } => {}
        }
    }
    dedup(&mut listeners);
    dedup(&mut grants);
    dedup(&mut pairs);

    // The balance guard: one lock per listener, always taken in ascending key order. The keys are integers, so
    // they go into the simple-query text with BEGIN: one round trip.
    let mut keys: Vec<i32> =
        listeners.iter().map(|l| i32::from_be_bytes([l[16], l[17], l[18], l[19]])).collect();
    keys.sort_unstable();
    keys.dedup();
    let begin = if keys.is_empty() {
        "BEGIN".to_owned()
    } else {
        let list: Vec<String> = keys.iter().map(i32::to_string).collect();
        format!(
            "BEGIN; SELECT count(pg_advisory_xact_lock({LOCK_CLASS}, k)) FROM unnest('{{{}}}'::int4[]) AS k",
            list.join(",")
        )
    };
    sqlx::raw_sql(&begin).execute(&mut *conn).await?;

    // State as of now, under the locks (a new statement, so a new snapshot).
    let mut pair_state: HashMap<(B256, Address), PairState> = HashMap::new();
    let mut funds: HashMap<Address, (U256, U256)> = HashMap::new();
    let mut totals: HashMap<B256, U256> = HashMap::new();
    if !pairs.is_empty() || !listeners.is_empty() {
        let rows: Vec<StateRow> = sqlx::query_as(READ_STATE)
            .bind(chain_id)
            .bind(pairs.iter().map(|(g, _)| g.to_vec()).collect::<Vec<_>>())
            .bind(pairs.iter().map(|(_, p)| p.to_vec()).collect::<Vec<_>>())
            .bind(listeners.iter().map(|l| l.to_vec()).collect::<Vec<_>>())
            .bind(grants.iter().map(|g| g.to_vec()).collect::<Vec<_>>())
            .fetch_all(&mut *conn)
            .await?;
        let amount = |v: Option<String>| -> Result<U256> {
            Ok(v.as_deref().map(parse_amount).transpose()?.unwrap_or_default())
        };
        for (kind, key, payee, a, b) in rows {
            match (kind.as_str(), payee) {
                ("p", Some(payee)) => {
                    let state = PairState { voucher: amount(a)?, settled: amount(b)? };
                    pair_state.insert((B256::from_slice(&key), Address::from_slice(&payee)), state);
                }
                ("l", _) => {
                    funds.insert(Address::from_slice(&key), (amount(a)?, amount(b)?));
                }
                ("g", _) => {
                    totals.insert(B256::from_slice(&key), amount(a)?);
                }
                _ => return Err(crate::Error::Corrupt(format!("unexpected state row {kind}"))),
            }
        }
    }

    // Decide, in arrival order.
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut upserts: HashMap<(B256, Address), (Address, U256, [u8; 65])> = HashMap::new();
    let mut opens: Vec<&NewSession> = Vec::new();
    let mut updates: HashMap<Uuid, (&SessionUpdate, U256)> = HashMap::new();
    for op in batch {
        match op {
            Op::Voucher { grant_id, payee, listener, cap, cumulative, sig, reply } => {
                let pair = pair_state.entry((*grant_id, *payee)).or_default();
                let (available, owed) = funds.entry(*listener).or_default();
                let total = totals.entry(*grant_id).or_default();
                let current = pair.current();
                let result = if *cumulative <= current {
                    Err(Refusal::Stale { stored: current })
                } else {
                    let increase = *cumulative - current;
                    if *owed + increase > *available {
                        Err(Refusal::InsufficientFunds {
                            available: available.saturating_sub(*owed),
                            needed: increase,
                        })
                    } else if *total + increase > *cap {
                        Err(Refusal::CapExceeded { cap: *cap, total: *total + increase })
                    } else {
                        *owed += increase;
                        *total += increase;
                        pair.voucher = *cumulative;
                        upserts.insert((*grant_id, *payee), (*listener, *cumulative, *sig));
                        Ok(())
                    }
                };
                outcomes.push((
                    reply.clone(),
                    Outcome::Voucher { payee: *payee, cumulative: *cumulative, result },
                ));
            }
            Op::Open { session, .. } => opens.push(session),
            Op::Update { update, reply } => {
                let voucher = pair_state.get(&(update.grant_id, update.payee)).map(|p| p.voucher);
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
                                   base_cumulative, status, relay_id)
             SELECT id::uuid, g, l, p, n, t::numeric, r::numeric, b::numeric, 'live', relay
             FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[], $6::text[], $7::text[],
                         $8::text[], $9::text[]) AS u(id, g, l, p, n, t, r, b, relay)",
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
        .execute(&mut *conn)
        .await?;
    }
    let updates_empty = updates.is_empty();
    if !updates.is_empty() {
        let updates: Vec<_> = updates.into_values().collect();
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

fn dedup<T: Ord>(v: &mut Vec<T>) {
    v.sort_unstable();
    v.dedup();
}
