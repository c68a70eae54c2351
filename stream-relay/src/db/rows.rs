//! The rows the relay writes, and the states and reasons stored in `sessions` as text.

use alloy::primitives::{Address, B256, U256};
use uuid::Uuid;

/// A session's state (`sessions.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum SessionStatus {
    /// Playing: beats are released.
    Live,
    /// Vouchers fell behind; beats wait for them.
    Paused,
    /// Ended; `close_reason` says why.
    Closed,
}

impl SessionStatus {
    /// As stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Paused => "paused",
            Self::Closed => "closed",
        }
    }
}

/// Why a session ended (`sessions.close_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum CloseReason {
    /// The player sent `stop`.
    Stopped,
    /// The track played to its end.
    Ended,
    /// A new `play` of the same (grant, payee) pair replaced it.
    Superseded,
    /// The connection closed.
    Disconnected,
    /// The relay shut down.
    Shutdown,
    /// The listener revoked the grant.
    GrantRevoked,
    /// A previous run of the relay left it open (closed at the next start).
    RelayRestart,
}

impl CloseReason {
    /// As stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Ended => "ended",
            Self::Superseded => "superseded",
            Self::Disconnected => "disconnected",
            Self::Shutdown => "shutdown",
            Self::GrantRevoked => "grant_revoked",
            Self::RelayRestart => "relay_restart",
        }
    }
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
    /// Live, paused or closed.
    pub status: SessionStatus,
    /// Why it closed.
    pub reason: Option<CloseReason>,
    /// A Yellow session: closing it stores the close of its app session.
    pub yellow: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_reasons_are_stored_as_before() {
        let statuses = [SessionStatus::Live, SessionStatus::Paused, SessionStatus::Closed];
        assert_eq!(statuses.map(SessionStatus::as_str), ["live", "paused", "closed"]);
        let reasons = [
            CloseReason::Stopped,
            CloseReason::Ended,
            CloseReason::Superseded,
            CloseReason::Disconnected,
            CloseReason::Shutdown,
            CloseReason::GrantRevoked,
            CloseReason::RelayRestart,
        ];
        assert_eq!(
            reasons.map(CloseReason::as_str),
            [
                "stopped",
                "ended",
                "superseded",
                "disconnected",
                "shutdown",
                "grant_revoked",
                "relay_restart"
            ]
        );
    }
}

/// A tip to store, as the relay checked it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TipRow {
    /// The grant.
    pub grant_id: B256,
    /// The player's id for it, unique under the grant.
    pub tip_id: U256,
    /// The grant's listener.
    pub listener: Address,
    /// Who is paid.
    pub payee: Address,
    /// The amount in base units.
    pub amount: U256,
    /// The message's bytes as given.
    pub message: Vec<u8>,
    /// The session key's signature.
    pub sig: [u8; 65],
}
