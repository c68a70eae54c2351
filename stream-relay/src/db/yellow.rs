//! The Yellow submitter's queue: stored states not yet accepted by the node (`yellow_states` above an app session's
//! `submitted`), and what the node made of them.

use alloy::primitives::B256;

use super::Pool;
use crate::Result;

/// One stored state waiting for the node.
#[derive(Debug)]
pub(crate) struct Pending {
    /// The app session.
    pub(crate) id: B256,
    /// The state's version.
    pub(crate) version: u64,
    /// Its intent (0 operate, 1 deposit, 3 close).
    pub(crate) intent: i16,
    /// The update as JSON, exactly as signed.
    pub(crate) update: String,
    /// The listener's quorum signature.
    pub(crate) sig: Vec<u8>,
    /// When it was stored, in Unix seconds.
    pub(crate) stored_at: f64,
}

/// (app session, version, intent, update JSON, listener signature, stored at) as read.
type PendingRow = (Vec<u8>, i64, i16, String, Vec<u8>, f64);

/// Takes over the unsubmitted states of a relay that died (no update for a minute), so they still reach the node.
pub(crate) async fn adopt(pool: &Pool, relay_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE yellow_app_sessions SET relay_id = $1
         WHERE submitted < version AND relay_id <> $1 AND updated_at < now() - interval '60 seconds'
           AND status IN ('open', 'closing')",
    )
    .bind(relay_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Everything relay `relay_id` has stored and the node has not accepted yet, by session and version (at most
/// 20,000 states a round).
pub(crate) async fn pending(pool: &Pool, relay_id: &str) -> Result<Vec<Pending>> {
    let rows: Vec<PendingRow> = sqlx::query_as(
        "SELECT s.app_session_id, s.version, s.intent, s.\"update\"::text, s.listener_sig,
                extract(epoch FROM s.created_at)::float8
         FROM yellow_app_sessions y
         JOIN yellow_states s ON s.app_session_id = y.app_session_id AND s.version > y.submitted
         WHERE y.relay_id = $1 AND y.submitted < y.version AND y.status IN ('open', 'closing')
         ORDER BY s.app_session_id, s.version
         LIMIT 20000",
    )
    .bind(relay_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, version, intent, update, sig, stored_at)| Pending {
            id: B256::from_slice(&id),
            version: version as u64,
            intent,
            update,
            sig,
            stored_at,
        })
        .collect())
}

/// Records what the node took this round, in one statement (one commit, not one per session): each
/// (app session, newest accepted version, closed) and drops the states the node holds now.
pub(crate) async fn record_accepted(pool: &Pool, accepted: &[(B256, u64, bool)]) -> Result<()> {
    if accepted.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH u AS (SELECT * FROM unnest($1::bytea[], $2::int8[], $3::bool[]) AS t(id, v, closed)),
         y AS (
             UPDATE yellow_app_sessions y
             SET submitted = greatest(y.submitted, u.v),
                 status = CASE WHEN u.closed THEN 'closed' ELSE y.status END, updated_at = now()
             FROM u WHERE y.app_session_id = u.id
             RETURNING y.app_session_id, y.version, u.v)
         DELETE FROM yellow_states s USING y
         WHERE s.app_session_id = y.app_session_id AND s.version <= y.v AND s.version < y.version",
    )
    .bind(accepted.iter().map(|(id, _, _)| id.to_vec()).collect::<Vec<_>>())
    .bind(accepted.iter().map(|(_, v, _)| *v as i64).collect::<Vec<_>>())
    .bind(accepted.iter().map(|(_, _, c)| *c).collect::<Vec<_>>())
    .execute(pool)
    .await?;
    Ok(())
}

/// Keeps the node's refusal of app session `id`'s state for operators (it is retried after a backoff).
pub(crate) async fn record_refusal(pool: &Pool, id: B256, error: &str) -> Result<()> {
    sqlx::query(
        "UPDATE yellow_app_sessions SET last_error = $2, updated_at = now() WHERE app_session_id = $1",
    )
    .bind(id.as_slice())
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks app session `id` failed: a stored state is unusable and no retry can help.
pub(crate) async fn record_failure(pool: &Pool, id: B256, error: &str) -> Result<()> {
    sqlx::query(
        "UPDATE yellow_app_sessions SET status = 'failed', last_error = $2, updated_at = now()
         WHERE app_session_id = $1",
    )
    .bind(id.as_slice())
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}
