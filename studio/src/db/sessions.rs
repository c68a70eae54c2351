//! Bearer sessions, keyed by the SHA-256 of their token; and sign-in, which uses up a nonce and opens a session in
//! one transaction.

use alloy::primitives::{Address, B256};

use super::pool::Db;
use crate::Result;

/// A session to open.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NewSession {
    /// SHA-256 of the bearer token.
    pub(crate) token_sha256: B256,
    /// The signed-in address.
    pub(crate) address: Address,
    /// Seconds it lasts.
    pub(crate) ttl_secs: u64,
    /// A time (unix seconds) it must not outlast: the signed message's Expiration Time.
    pub(crate) not_after: Option<i64>,
}

/// An open session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Session {
    /// The signed-in address.
    pub(crate) address: Address,
    /// When it ends, in unix seconds.
    pub(crate) expires_at: i64,
}

impl Db {
    /// Uses up `nonce` and opens `session`, both or neither. The nonce is deleted by the statement that checks it
    /// (issued for this chain, unexpired), so of two sign-ins with one nonce exactly one finds it: `None` for the
    /// other, and for a nonce never issued, used or expired. Expired sessions are deleted on the way.
    pub(crate) async fn sign_in(&self, nonce: &str, session: &NewSession) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        let used = sqlx::query(
            "DELETE FROM studio_nonces WHERE nonce = $1 AND chain_id = $2 AND expires_at > now()",
        )
        .bind(nonce)
        .bind(self.chain_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if used == 0 {
            return Ok(None);
        }
        sqlx::query("DELETE FROM studio_sessions WHERE expires_at <= now()")
            .execute(&mut *tx)
            .await?;
        // LEAST ignores a NULL: without an Expiration Time the session lasts its full time.
        let expires_at: i64 = sqlx::query_scalar(
            "INSERT INTO studio_sessions (token_sha256, chain_id, address, expires_at)
             VALUES ($1, $2, $3, LEAST(date_trunc('second', now()) + $4::bigint * interval '1 second',
                                       to_timestamp($5::bigint)))
             RETURNING extract(epoch FROM expires_at)::bigint",
        )
        .bind(session.token_sha256.as_slice())
        .bind(self.chain_id)
        .bind(session.address.as_slice())
        .bind(session.ttl_secs as i64)
        .bind(session.not_after)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(expires_at))
    }

    /// The open session whose token hashes to `token_sha256`, if it is this chain's and has not expired.
    pub(crate) async fn session(&self, token_sha256: B256) -> Result<Option<Session>> {
        let row: Option<(Vec<u8>, i64)> = sqlx::query_as(
            "SELECT address, extract(epoch FROM expires_at)::bigint FROM studio_sessions
             WHERE token_sha256 = $1 AND chain_id = $2 AND expires_at > now()",
        )
        .bind(token_sha256.as_slice())
        .bind(self.chain_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(address, expires_at)| Session {
            address: Address::from_slice(&address),
            expires_at,
        }))
    }
}
