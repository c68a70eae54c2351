//! What the relay reads from Postgres: the grant's standing at `hello` (revoked or not, the listener's funds and
//! debts, by the guard's own read, [`super::state`]), track terms at `play`; and the clean-up of a previous run's
//! sessions at start. Writes go through the group-commit [`crate::writer`].

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, U256};
use beatstream_primitives::SessionGrant;
use sqlx::PgPool;

use super::{
    commit::STORE_YELLOW_CLOSES,
    parse_amount,
    state::{self, grant_pairs},
};
use crate::{
    Result,
    db::rows::CloseReason,
    guard::{Keys, Revocation},
};

/// How long track terms are cached: a rate change reaches new plays within this.
const TRACK_TTL: Duration = Duration::from_secs(10);

/// A grant's standing when it is presented.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrantStanding {
    /// Set when the grant is revoked; the grant was not recorded and nothing else is read.
    pub revoked: Option<Revocation>,
    /// What the listener can still spend: the vault's `available` funds (thawing funds do not count) minus what
    /// unsettled vouchers of all its grants owe.
    pub available: U256,
    /// Per payee of this grant, the newest cumulative stored or settled.
    pub pairs: HashMap<Address, U256>,
    /// Sum over the grant's payees of the newest cumulative: what counts against the cap.
    pub total: U256,
}

/// What playing a track costs and who it pays, as the registry's `playTerms` has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackTerms {
    /// The artist's ENS `addr` record.
    pub payee: Address,
    /// Base units per second: the track's rate, or the artist's when the track has none.
    pub rate: U256,
    /// The artist's ENS node.
    pub artist_node: B256,
    /// Length in seconds.
    pub duration: u32,
    /// The track's on-chain `contentHash`.
    pub content_hash: B256,
    /// The audio uploaded to this node under that `contentHash` as its root, if any.
    pub audio: Option<StoredAudio>,
}

/// A track's uploaded audio as the studio stored it (`audio_tracks`), not yet checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAudio {
    /// Chunks, as the row says.
    pub chunk_count: i32,
    /// The per-track secret sealed under the node's audio key.
    pub sealed_secret: Vec<u8>,
    /// The manifest JSON.
    pub manifest: String,
}

/// Read access to the relay's tables and the indexer's.
#[derive(Debug)]
pub struct Store {
    pool: PgPool,
    chain_id: i64,
    vault: Address,
    tracks: Mutex<HashMap<U256, (Instant, Option<TrackTerms>)>>,
}

impl Store {
    /// A store over `pool` for the vault `vault` on chain `chain_id`.
    pub fn new(pool: PgPool, chain_id: u64, vault: Address) -> Self {
        Self { pool, chain_id: chain_id as i64, vault, tracks: Mutex::new(HashMap::new()) }
    }

    /// The pool.
    pub const fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The chain id as stored.
    pub const fn chain_id(&self) -> i64 {
        self.chain_id
    }

    /// Records a verified grant (idempotent) and returns the listener's and the grant's standing; a revoked grant
    /// is not recorded.
    pub async fn register_grant(&self, grant: &SessionGrant, sig: &[u8]) -> Result<GrantStanding> {
        let id = grant.id();
        let keys = Keys {
            listeners: vec![grant.listener],
            grants: vec![(id, grant.listener, grant.nonce)],
            ..Keys::default()
        };
        // The same read, and so the same rules, as the writer's guard.
        let state = state::read(&self.pool, self.chain_id, "", &keys).await?;
        if let Some(revocation) = state.revoked.get(&id) {
            return Ok(GrantStanding { revoked: Some(*revocation), ..GrantStanding::default() });
        }
        sqlx::query(
            "INSERT INTO grants (grant_id, chain_id, vault, listener, session_key, cap, expires_at, nonce, signature)
             VALUES ($1, $2, $3, $4, $5, $6::numeric, to_timestamp($7::float8), $8::numeric, $9)
             ON CONFLICT (grant_id) DO NOTHING",
        )
        .bind(id.as_slice())
        .bind(self.chain_id)
        .bind(self.vault.as_slice())
        .bind(grant.listener.as_slice())
        .bind(grant.sessionKey.as_slice())
        .bind(grant.cap.to_string())
        .bind(grant.expiresAt.min(253_402_300_799) as f64) // 9999-12-31, the timestamp range's end
        .bind(grant.nonce.to_string())
        .bind(sig)
        .execute(&self.pool)
        .await?;

        let rows: Vec<(Vec<u8>, String)> = sqlx::query_as(concat!(
            "SELECT gp.payee, gp.cumulative::text FROM (",
            grant_pairs!("$2"),
            ") gp"
        ))
        .bind(self.chain_id)
        .bind(id.as_slice())
        .fetch_all(&self.pool)
        .await?;
        let mut standing = GrantStanding::default();
        for (payee, cumulative) in rows {
            let cumulative = parse_amount(&cumulative)?;
            standing.total += cumulative;
            standing.pairs.insert(Address::from_slice(&payee), cumulative);
        }
        standing.available =
            state.funds.get(&grant.listener).copied().unwrap_or_default().spendable();
        Ok(standing)
    }

    /// Whether `payee` may be tipped: an artist's `addr` record or the payee of a split in force.
    pub async fn is_payee(&self, payee: Address) -> Result<bool> {
        let known: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM artists WHERE chain_id = $1 AND addr = $2)
                 OR EXISTS (SELECT 1 FROM split_in_force WHERE chain_id = $1 AND split = $2)",
        )
        .bind(self.chain_id)
        .bind(payee.to_vec())
        .fetch_one(&self.pool)
        .await?;
        Ok(known)
    }

    /// Terms of a published track that has a payee, or `None`. The payee is the vault's `playPayee(trackId)`, as the
    /// indexer mirrors it: the payee of the track's split in force, else of its artist's split in force, else the
    /// artist's `addr` record. A session keeps the payee it started with, so the seconds it streams are paid under
    /// that split version whenever they settle.
    pub async fn track(&self, track_id: U256) -> Result<Option<TrackTerms>> {
        if let Some((at, terms)) = self.tracks.lock().expect("not poisoned").get(&track_id)
            && at.elapsed() < TRACK_TTL
        {
            return Ok(terms.clone());
        }
        let row: Option<TrackRow> = sqlx::query_as(
            "SELECT t.artist_node, coalesce(ts.split, asp.split, a.addr),
                    (CASE WHEN t.rate_per_second = 0 THEN a.rate_per_second ELSE t.rate_per_second END)::text,
                    t.duration, t.content_hash, au.chunk_count, au.sealed_secret, au.manifest::text
             FROM tracks t JOIN artists a ON a.chain_id = t.chain_id AND a.node = t.artist_node
             LEFT JOIN audio_tracks au ON au.chain_id = t.chain_id AND au.root = t.content_hash
             LEFT JOIN split_in_force ts
                    ON ts.chain_id = t.chain_id AND ts.node = t.artist_node AND ts.track_id = t.track_id
             LEFT JOIN split_in_force asp
                    ON asp.chain_id = t.chain_id AND asp.node = t.artist_node AND asp.track_id = 0
             WHERE t.chain_id = $1 AND t.track_id = $2::numeric AND t.published",
        )
        .bind(self.chain_id)
        .bind(track_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let terms = match row {
            Some((node, Some(addr), rate, duration, content_hash, chunks, sealed, manifest))
                if addr.len() == 20 && addr != [0u8; 20] =>
            {
                let audio = match (chunks, sealed, manifest) {
                    (Some(chunk_count), Some(sealed_secret), Some(manifest)) => {
                        Some(StoredAudio { chunk_count, sealed_secret, manifest })
                    }
                    _ => None,
                };
                Some(TrackTerms {
                    payee: Address::from_slice(&addr),
                    rate: parse_amount(&rate)?,
                    artist_node: B256::from_slice(&node),
                    duration: duration.max(0) as u32,
                    content_hash: B256::from_slice(&content_hash),
                    audio,
                })
            }
            _ => None,
        };
        self.tracks.lock().expect("not poisoned").insert(track_id, (Instant::now(), terms.clone()));
        Ok(terms)
    }

    /// Whether the relay already recorded Yellow app session `id` (an open is never recorded twice).
    pub async fn yellow_session_exists(&self, id: B256) -> Result<bool> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM yellow_app_sessions WHERE app_session_id = $1")
                .bind(id.as_slice())
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    /// Closes the sessions a previous run of relay `relay_id` left open (it died without closing them), stores the
    /// closes of their Yellow app sessions so the submitter releases those funds, and drops its leases.
    pub async fn close_orphans(&self, relay_id: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let open: Vec<(Vec<u8>,)> = sqlx::query_as(
            "SELECT app_session_id FROM yellow_app_sessions WHERE relay_id = $1 AND status = 'open'",
        )
        .bind(relay_id)
        .fetch_all(&mut *tx)
        .await?;
        if !open.is_empty() {
            sqlx::query(STORE_YELLOW_CLOSES)
                .bind(open.into_iter().map(|(id,)| id).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query(
            "UPDATE sessions SET status = 'closed', close_reason = $2, ended_at = now(), updated_at = now()
             WHERE relay_id = $1 AND ended_at IS NULL",
        )
        .bind(relay_id)
        .bind(CloseReason::RelayRestart)
        .execute(&mut *tx)
        .await?;
        // The killed run's leases: this run holds none yet.
        sqlx::query("DELETE FROM relay_leases WHERE relay_id = $1")
            .bind(relay_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}

/// (artist node, payee, rate, duration, content hash, and the uploaded audio's chunk count, sealed secret and
/// manifest) as read.
type TrackRow =
    (Vec<u8>, Option<Vec<u8>>, String, i32, Vec<u8>, Option<i32>, Option<Vec<u8>>, Option<String>);
