//! The writer's connection and the statements of one group commit, in the order [`crate::writer`] issues them:
//! `BEGIN` with the listeners' advisory locks, the guard's state read, the decided writes, `COMMIT`.

use std::collections::{HashMap, HashSet};

use alloy::primitives::{Address, B256, U256};
use sqlx::{ConnectOptions, PgConnection, postgres::PgConnectOptions};
use uuid::Uuid;

use super::{
    rows::{
        CloseReason, NewSession, SessionStatus, SessionUpdate, TipRow, YellowOpenRow,
        YellowStateRow,
    },
    state,
};
use crate::{
    Result,
    guard::{Keys, State},
};

/// Advisory lock class of the per-listener balance guard ("BSR1").
const LOCK_CLASS: i32 = 0x4253_5231;

/// What one group commit writes, as the writer decided it.
#[derive(Debug, Default)]
pub(crate) struct Writes<'a> {
    /// Accepted vouchers, the newest per pair: (grant, payee) → (listener, cumulative, signature).
    pub(crate) vouchers: HashMap<(B256, Address), (Address, U256, [u8; 65])>,
    /// Accepted tips.
    pub(crate) tips: Vec<&'a TipRow>,
    /// Accepted Yellow states.
    pub(crate) yellow_states: Vec<&'a YellowStateRow>,
    /// New sessions.
    pub(crate) opens: Vec<&'a NewSession>,
    /// Session changes, the last per session, with the amount paid in it.
    pub(crate) updates: HashMap<Uuid, (&'a SessionUpdate, U256)>,
    /// Listeners whose leases this relay writes as they now stand, replacing its rows for them: (grant, what this
    /// relay may still add) for each grant it holds.
    pub(crate) leases: HashMap<Address, Vec<(B256, U256)>>,
}

/// A writer's connection. The hot statements (the state read and the voucher upsert) are equality lookups on
/// primary keys and indexes whatever the table sizes, so they keep one generic plan instead of being planned on
/// every commit. Statements on `sessions` are planned per commit (see [`Conn::write`]). Both are set per
/// transaction (`SET LOCAL`), never on the session, so the connection may go through a transaction-mode pooler.
#[derive(Debug)]
pub(crate) struct Conn {
    conn: PgConnection,
    /// The relay whose leases this connection writes.
    relay_id: String,
}

impl Conn {
    /// Connects with `options`, for relay `relay_id`.
    pub(crate) async fn connect(options: &PgConnectOptions, relay_id: &str) -> Result<Self> {
        Ok(Self { conn: options.connect().await?, relay_id: relay_id.to_owned() })
    }

    /// Stores `vouchers`, all decided within held leases, in one statement and so one transaction of its own, if
    /// no listener's guard epoch differs from the one given with it in `epochs`; with `NOTIFY` as at a commit.
    /// Returns the listeners whose epoch changed: then nothing was written.
    pub(crate) async fn write_held(
        &mut self,
        chain_id: i64,
        vouchers: &HashMap<(B256, Address), (Address, U256, [u8; 65])>,
        epochs: &[(Address, i64)],
    ) -> Result<Vec<Address>> {
        let rows: Vec<_> = vouchers.iter().collect();
        let changed: Vec<(Option<Vec<u8>>,)> = sqlx::query_as(WRITE_HELD)
            .bind(rows.iter().map(|((g, _), _)| g.to_vec()).collect::<Vec<_>>())
            .bind(rows.iter().map(|((_, p), _)| p.to_vec()).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, (l, _, _))| l.to_vec()).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, (_, c, _))| c.to_string()).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, (_, _, s))| s.to_vec()).collect::<Vec<_>>())
            .bind(epochs.iter().map(|(l, _)| l.to_vec()).collect::<Vec<_>>())
            .bind(epochs.iter().map(|(_, e)| *e).collect::<Vec<_>>())
            .bind(chain_id)
            .fetch_all(&mut self.conn)
            .await?;
        Ok(changed.into_iter().filter_map(|(l,)| l).map(|l| Address::from_slice(&l)).collect())
    }

    /// Ends the open transaction without writing anything.
    pub(crate) async fn rollback(&mut self) -> Result<()> {
        sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await?;
        Ok(())
    }

    /// Opens the transaction and takes the advisory locks `locks` (sorted and without repeats, so two relays never
    /// deadlock). The keys are integers, so they go into the simple-query text with `BEGIN`: one round trip.
    pub(crate) async fn begin_locked(&mut self, locks: &[i32]) -> Result<()> {
        const BEGIN: &str = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan";
        let begin = if locks.is_empty() {
            BEGIN.to_owned()
        } else {
            let list: Vec<String> = locks.iter().map(i32::to_string).collect();
            format!(
                "{BEGIN}; SELECT count(pg_advisory_xact_lock({LOCK_CLASS}, k)) FROM unnest('{{{}}}'::int4[]) AS k",
                list.join(",")
            )
        };
        sqlx::raw_sql(&begin).execute(&mut self.conn).await?;
        Ok(())
    }

    /// The guard's state as of now: a new statement after the locks, so its snapshot is taken under them.
    pub(crate) async fn read_state(&mut self, chain_id: i64, keys: &Keys) -> Result<State> {
        state::read(&mut self.conn, chain_id, &self.relay_id, keys).await
    }

    /// Issues the decided writes.
    pub(crate) async fn write(&mut self, chain_id: i64, mut writes: Writes<'_>) -> Result<()> {
        if !writes.vouchers.is_empty() {
            let rows: Vec<_> = writes.vouchers.into_iter().collect();
            sqlx::query(UPSERT_VOUCHERS)
                .bind(rows.iter().map(|((g, _), _)| g.to_vec()).collect::<Vec<_>>())
                .bind(rows.iter().map(|((_, p), _)| p.to_vec()).collect::<Vec<_>>())
                .bind(rows.iter().map(|(_, (l, _, _))| l.to_vec()).collect::<Vec<_>>())
                .bind(rows.iter().map(|(_, (_, c, _))| c.to_string()).collect::<Vec<_>>())
                .bind(rows.iter().map(|(_, (_, _, s))| s.to_vec()).collect::<Vec<_>>())
                .execute(&mut self.conn)
                .await?;
        }

        if !writes.tips.is_empty() {
            sqlx::query(
                "INSERT INTO tips (grant_id, tip_id, listener, payee, amount, message, signature, relay_id)
                 SELECT g, i::numeric, l, p, a::numeric, m, s, $8
                 FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::bytea[], $5::text[], $6::bytea[], $7::bytea[])
                      AS t(g, i, l, p, a, m, s)",
            )
            .bind(writes.tips.iter().map(|t| t.grant_id.to_vec()).collect::<Vec<_>>())
            .bind(writes.tips.iter().map(|t| t.tip_id.to_string()).collect::<Vec<_>>())
            .bind(writes.tips.iter().map(|t| t.listener.to_vec()).collect::<Vec<_>>())
            .bind(writes.tips.iter().map(|t| t.payee.to_vec()).collect::<Vec<_>>())
            .bind(writes.tips.iter().map(|t| t.amount.to_string()).collect::<Vec<_>>())
            .bind(writes.tips.iter().map(|t| t.message.clone()).collect::<Vec<_>>())
            .bind(writes.tips.iter().map(|t| t.sig.to_vec()).collect::<Vec<_>>())
            .bind(&self.relay_id)
            .execute(&mut self.conn)
            .await?;
        }

        let yellow_opens: Vec<&YellowOpenRow> =
            writes.opens.iter().filter_map(|s| s.yellow.as_deref()).collect();
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
                writes
                    .opens
                    .iter()
                    .filter(|s| s.yellow.is_some())
                    .map(|s| s.relay_id.clone())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut self.conn)
            .await?;
            writes.yellow_states.extend(yellow_opens.iter().map(|y| &y.state));
        }
        if !writes.yellow_states.is_empty() {
            // Newest per session first into the session row; every state into the submission queue.
            let mut newest: HashMap<B256, &YellowStateRow> = HashMap::new();
            for s in &writes.yellow_states {
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
            .execute(&mut self.conn)
            .await?;
            sqlx::query(
                "INSERT INTO yellow_states (app_session_id, version, intent, \"update\", listener_sig, close_sig)
                 SELECT i, v, n, u::jsonb, s, c
                 FROM unnest($1::bytea[], $2::int8[], $3::int2[], $4::text[], $5::bytea[], $6::bytea[])
                      AS t(i, v, n, u, s, c)
                 ON CONFLICT (app_session_id, version) DO NOTHING",
            )
            .bind(writes.yellow_states.iter().map(|s| s.app_session_id.to_vec()).collect::<Vec<_>>())
            .bind(writes.yellow_states.iter().map(|s| s.version as i64).collect::<Vec<_>>())
            .bind(writes.yellow_states.iter().map(|s| i16::from(s.intent)).collect::<Vec<_>>())
            .bind(writes.yellow_states.iter().map(|s| s.update.clone()).collect::<Vec<_>>())
            .bind(writes.yellow_states.iter().map(|s| s.sig.to_vec()).collect::<Vec<_>>())
            .bind(writes.yellow_states.iter().map(|s| s.close_sig.to_vec()).collect::<Vec<_>>())
            .execute(&mut self.conn)
            .await?;
        }

        if !writes.leases.is_empty() {
            sqlx::query(
                "DELETE FROM relay_leases WHERE chain_id = $1 AND relay_id = $2 AND listener = ANY($3::bytea[])",
            )
            .bind(chain_id)
            .bind(&self.relay_id)
            .bind(writes.leases.keys().map(|l| l.to_vec()).collect::<Vec<_>>())
            .execute(&mut self.conn)
            .await?;
            let held: Vec<(Address, B256, U256)> = writes
                .leases
                .iter()
                .flat_map(|(l, grants)| grants.iter().map(|(g, a)| (*l, *g, *a)))
                .filter(|(_, _, a)| !a.is_zero())
                .collect();
            if !held.is_empty() {
                sqlx::query(
                    "INSERT INTO relay_leases (chain_id, grant_id, relay_id, listener, amount)
                     SELECT $1, g, $2, l, a::numeric FROM unnest($3::bytea[], $4::bytea[], $5::text[]) AS u(g, l, a)
                     ON CONFLICT (chain_id, grant_id, relay_id) DO UPDATE
                        SET listener = EXCLUDED.listener, amount = EXCLUDED.amount, updated_at = now()",
                )
                .bind(chain_id)
                .bind(&self.relay_id)
                .bind(held.iter().map(|(_, g, _)| g.to_vec()).collect::<Vec<_>>())
                .bind(held.iter().map(|(l, _, _)| l.to_vec()).collect::<Vec<_>>())
                .bind(held.iter().map(|(_, _, a)| a.to_string()).collect::<Vec<_>>())
                .execute(&mut self.conn)
                .await?;
            }
        }

        if !writes.opens.is_empty() || !writes.updates.is_empty() {
            // `sessions` grows from empty; a generic plan made then would scan every live session on each commit
            // (seconds at 10,000 sessions) until autoanalyze. These rarer statements are planned afresh.
            sqlx::raw_sql("SET LOCAL plan_cache_mode = force_custom_plan")
                .execute(&mut self.conn)
                .await?;
        }
        if !writes.opens.is_empty() {
            let live_pairs: HashSet<(B256, Address)> =
                writes.opens.iter().map(|s| (s.grant_id, s.payee)).collect();
            sqlx::query(
                "UPDATE sessions AS s
                 SET status = 'closed', close_reason = 'superseded', ended_at = now(), updated_at = now()
                 FROM unnest($1::bytea[], $2::bytea[]) AS t(g, p)
                 WHERE s.ended_at IS NULL AND s.grant_id = t.g AND s.payee = t.p",
            )
            .bind(live_pairs.iter().map(|(g, _)| g.to_vec()).collect::<Vec<_>>())
            .bind(live_pairs.iter().map(|(_, p)| p.to_vec()).collect::<Vec<_>>())
            .execute(&mut self.conn)
            .await?;
            sqlx::query(
                "INSERT INTO sessions (session_id, grant_id, listener, payee, artist_node, track_id, rate_per_second,
                                       base_cumulative, status, relay_id, channel)
                 SELECT id::uuid, g, l, p, n, t::numeric, r::numeric, b::numeric, 'live', relay,
                        CASE WHEN y THEN 'yellow' ELSE 'vault' END
                 FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[], $6::text[], $7::text[],
                             $8::text[], $9::text[], $10::bool[]) AS u(id, g, l, p, n, t, r, b, relay, y)",
            )
            .bind(writes.opens.iter().map(|s| s.session_id.to_string()).collect::<Vec<_>>())
            .bind(writes.opens.iter().map(|s| s.grant_id.to_vec()).collect::<Vec<_>>())
            .bind(writes.opens.iter().map(|s| s.listener.to_vec()).collect::<Vec<_>>())
            .bind(writes.opens.iter().map(|s| s.payee.to_vec()).collect::<Vec<_>>())
            .bind(writes.opens.iter().map(|s| s.artist_node.to_vec()).collect::<Vec<_>>())
            .bind(writes.opens.iter().map(|s| s.track_id.to_string()).collect::<Vec<_>>())
            .bind(writes.opens.iter().map(|s| s.rate.to_string()).collect::<Vec<_>>())
            .bind(writes.opens.iter().map(|s| s.base.to_string()).collect::<Vec<_>>())
            .bind(writes.opens.iter().map(|s| s.relay_id.clone()).collect::<Vec<_>>())
            .bind(writes.opens.iter().map(|s| s.yellow.is_some()).collect::<Vec<_>>())
            .execute(&mut self.conn)
            .await?;
        }
        if !writes.updates.is_empty() {
            let updates: Vec<_> = writes.updates.into_values().collect();
            let closes: Vec<Vec<u8>> = updates
                .iter()
                .filter(|(u, _)| u.yellow && u.status == SessionStatus::Closed)
                .map(|(u, _)| u.grant_id.to_vec())
                .collect();
            if !closes.is_empty() {
                sqlx::query(STORE_YELLOW_CLOSES).bind(closes).execute(&mut self.conn).await?;
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
            .bind(updates.iter().map(|(u, _)| u.status.as_str()).collect::<Vec<_>>())
            .bind(updates.iter().map(|(u, _)| u.reason.map(CloseReason::as_str)).collect::<Vec<_>>())
            .execute(&mut self.conn)
            .await?;
        }
        Ok(())
    }

    /// Commits; with `notify`, tells LISTENers (the GraphQL API's live sessions) once, delivered at commit and
    /// coalesced by Postgres.
    pub(crate) async fn commit(&mut self, notify: bool) -> Result<()> {
        sqlx::raw_sql(if notify {
            "SELECT pg_notify('beatstream_vouchers', ''); COMMIT"
        } else {
            "COMMIT"
        })
        .execute(&mut self.conn)
        .await?;
        Ok(())
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

/// The held-lease commit: one statement, so one transaction, that writes the vouchers ($1-$5, as
/// [`UPSERT_VOUCHERS`]) only if every listener's guard epoch ($6/$7, chain $8) is still the one its leases were read
/// at, and returns the listeners whose epoch changed (then nothing is written), or one `NULL` row with the `NOTIFY`
/// of a commit.
const WRITE_HELD: &str = "
    WITH changed AS (
        SELECT t.l FROM unnest($6::bytea[], $7::int8[]) AS t(l, e)
        WHERE coalesce((SELECT g.epoch FROM guard_epochs g WHERE g.chain_id = $8 AND g.listener = t.l), 0) <> t.e
    ), written AS (
        INSERT INTO vouchers (grant_id, payee, listener, cumulative, signature)
        SELECT g, p, l, c::numeric, s FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::text[], $5::bytea[])
               AS u(g, p, l, c, s)
        WHERE NOT EXISTS (SELECT 1 FROM changed)
        ON CONFLICT (grant_id, payee) DO UPDATE
           SET cumulative = EXCLUDED.cumulative, signature = EXCLUDED.signature, updated_at = now()
           WHERE vouchers.cumulative < EXCLUDED.cumulative
        RETURNING 1
    )
    SELECT l FROM changed
    UNION ALL
    SELECT NULL FROM (SELECT pg_notify('beatstream_vouchers', '')) AS n WHERE NOT EXISTS (SELECT 1 FROM changed)";

/// The voucher upsert: never lowers a cumulative.
const UPSERT_VOUCHERS: &str = "
    INSERT INTO vouchers (grant_id, payee, listener, cumulative, signature)
    SELECT g, p, l, c::numeric, s FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::text[], $5::bytea[])
           AS u(g, p, l, c, s)
    ON CONFLICT (grant_id, payee) DO UPDATE
       SET cumulative = EXCLUDED.cumulative, signature = EXCLUDED.signature, updated_at = now()
       WHERE vouchers.cumulative < EXCLUDED.cumulative";
