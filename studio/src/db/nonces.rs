//! Sign-in nonces: issued with an expiry, and deleted by the statement that checks them at sign-in.

use super::pool::Db;
use crate::Result;

impl Db {
    /// Stores `nonce` for `ttl_secs` (from the start of the database's current second) and deletes every expired
    /// nonce; returns when it expires, in unix seconds.
    pub(crate) async fn issue_nonce(&self, nonce: &str, ttl_secs: u64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "WITH expired AS (DELETE FROM studio_nonces WHERE expires_at <= now())
             INSERT INTO studio_nonces (nonce, chain_id, expires_at)
             VALUES ($1, $2, date_trunc('second', now()) + $3::bigint * interval '1 second')
             RETURNING extract(epoch FROM expires_at)::bigint",
        )
        .bind(nonce)
        .bind(self.chain_id)
        .bind(ttl_secs as i64)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Whether `nonce` was issued for this chain, is unused and has not expired. Only a first look (it spares a
    /// message with a stale nonce its signature check); [`Db::sign_in`] decides, atomically.
    pub(crate) async fn nonce_is_open(&self, nonce: &str) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (
                 SELECT 1 FROM studio_nonces WHERE nonce = $1 AND chain_id = $2 AND expires_at > now()
             )",
        )
        .bind(nonce)
        .bind(self.chain_id)
        .fetch_one(&self.pool)
        .await?)
    }
}
