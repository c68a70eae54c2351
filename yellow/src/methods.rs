//! Typed requests and responses for the methods a payee uses, with their wire names.
//!
//! Fields the node sends that a payee does not need are kept in `extra` maps rather than dropped, so a newer node
//! adding fields never breaks decoding.

use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    Amount, AppDefinition, AppStateUpdate, Client, QuorumSig, Result, U64String, app::lower_address,
};

pub use crate::client::PING;
/// `node.v1.get_config`.
pub const GET_CONFIG: &str = "node.v1.get_config";
/// `node.v1.get_assets`.
pub const GET_ASSETS: &str = "node.v1.get_assets";
/// `app_sessions.v1.create_app_session`.
pub const CREATE_APP_SESSION: &str = "app_sessions.v1.create_app_session";
/// `app_sessions.v1.submit_deposit_state`.
pub const SUBMIT_DEPOSIT_STATE: &str = "app_sessions.v1.submit_deposit_state";
/// `app_sessions.v1.submit_app_state`.
pub const SUBMIT_APP_STATE: &str = "app_sessions.v1.submit_app_state";
/// `app_sessions.v1.get_app_sessions`.
pub const GET_APP_SESSIONS: &str = "app_sessions.v1.get_app_sessions";
/// `user.v1.get_balances`.
pub const GET_BALANCES: &str = "user.v1.get_balances";
/// `user.v1.get_transactions`.
pub const GET_TRANSACTIONS: &str = "user.v1.get_transactions";

/// An empty object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `node.v1.get_config` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeConfig {
    /// The node's own wallet.
    #[serde(default)]
    pub node_address: Option<String>,
    /// Its version string.
    #[serde(default)]
    pub node_version: Option<String>,
    /// Signature validators it accepts, base64-encoded as the node sends them.
    #[serde(default)]
    pub supported_sig_validators: Option<String>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One asset the node handles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    /// Symbol, as allocations name it.
    pub symbol: String,
    /// Decimals of its smallest unit.
    pub decimals: u8,
    /// Everything else (name, tokens per chain).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `node.v1.get_assets` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assets {
    /// The assets.
    pub assets: Vec<Asset>,
}

/// `app_sessions.v1.create_app_session` request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateAppSession {
    /// The definition.
    pub definition: AppDefinition,
    /// Application data.
    pub session_data: String,
    /// Signatures over [`AppDefinition::creation_hash`].
    pub quorum_sigs: Vec<QuorumSig>,
}

/// `app_sessions.v1.create_app_session` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Created {
    /// The session id.
    pub app_session_id: B256,
    /// `"1"`.
    pub version: U64String,
    /// `"open"`.
    pub status: String,
}

/// `app_sessions.v1.submit_app_state` request: an operate, withdraw or close update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubmitAppState {
    /// The update.
    pub app_state_update: AppStateUpdate,
    /// Signatures over [`AppStateUpdate::hash`].
    pub quorum_sigs: Vec<QuorumSig>,
}

/// `app_sessions.v1.submit_deposit_state` request: a deposit update and the depositor's channel state that funds
/// it (opaque here: the node checks it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubmitDepositState {
    /// The deposit update.
    pub app_state_update: AppStateUpdate,
    /// Signatures over [`AppStateUpdate::hash`].
    pub quorum_sigs: Vec<QuorumSig>,
    /// The depositor's signed channel state.
    pub user_state: Value,
}

/// `app_sessions.v1.get_app_sessions` request: by id or by participant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetAppSessions {
    /// One session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_session_id: Option<B256>,
    /// Sessions of a wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    /// `open` or `closed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A participant's holding as the node reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedAllocation {
    /// Wallet.
    #[serde(with = "lower_address")]
    pub participant: Address,
    /// Asset symbol.
    pub asset: String,
    /// Human units.
    pub amount: Amount,
}

/// One app session as the node reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppSessionInfo {
    /// Id.
    pub app_session_id: B256,
    /// `open` or `closed`.
    pub status: String,
    /// Current version.
    pub version: U64String,
    /// Current holdings.
    #[serde(default)]
    pub allocations: Vec<ReportedAllocation>,
    /// Current application data.
    #[serde(default)]
    pub session_data: String,
    /// Everything else (definition fields, timestamps).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `app_sessions.v1.get_app_sessions` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppSessions {
    /// Matching sessions.
    pub app_sessions: Vec<AppSessionInfo>,
    /// Pagination metadata.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `user.v1.get_balances` request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetBalances {
    /// Lower-case wallet.
    #[serde(with = "lower_address")]
    pub wallet: Address,
}

/// One balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Asset symbol.
    pub asset: String,
    /// Human units.
    pub amount: Amount,
}

/// `user.v1.get_balances` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    /// Per asset.
    pub balances: Vec<Balance>,
}

impl Client {
    /// `node.v1.ping`.
    pub async fn ping(&self) -> Result<()> {
        self.request::<_, Value>(PING, &Empty {}).await.map(drop)
    }

    /// `node.v1.get_config`.
    pub async fn get_config(&self) -> Result<NodeConfig> {
        self.request(GET_CONFIG, &Empty {}).await
    }

    /// `node.v1.get_assets`.
    pub async fn get_assets(&self) -> Result<Assets> {
        self.request(GET_ASSETS, &Empty {}).await
    }

    /// `app_sessions.v1.create_app_session`.
    pub async fn create_app_session(&self, req: &CreateAppSession) -> Result<Created> {
        self.request(CREATE_APP_SESSION, req).await
    }

    /// `app_sessions.v1.submit_deposit_state`.
    pub async fn submit_deposit_state(&self, req: &SubmitDepositState) -> Result<()> {
        self.request::<_, Value>(SUBMIT_DEPOSIT_STATE, req).await.map(drop)
    }

    /// `app_sessions.v1.submit_app_state`.
    pub async fn submit_app_state(&self, req: &SubmitAppState) -> Result<()> {
        self.request::<_, Value>(SUBMIT_APP_STATE, req).await.map(drop)
    }

    /// `app_sessions.v1.get_app_sessions` for one id.
    pub async fn get_app_session(&self, id: B256) -> Result<Option<AppSessionInfo>> {
        let req = GetAppSessions { app_session_id: Some(id), ..GetAppSessions::default() };
        let found: AppSessions = self.request(GET_APP_SESSIONS, &req).await?;
        Ok(found.app_sessions.into_iter().find(|s| s.app_session_id == id))
    }

    /// `user.v1.get_balances`.
    pub async fn get_balances(&self, wallet: Address) -> Result<Balances> {
        self.request(GET_BALANCES, &GetBalances { wallet }).await
    }
}

/// `app_sessions.v1.submit_session_key_state`.
pub const SUBMIT_SESSION_KEY_STATE: &str = "app_sessions.v1.submit_session_key_state";
/// `app_sessions.v1.get_last_key_states`.
pub const GET_LAST_KEY_STATES: &str = "app_sessions.v1.get_last_key_states";
/// `app_sessions.v1.get_app_definition`.
pub const GET_APP_DEFINITION: &str = "app_sessions.v1.get_app_definition";

/// Most key states the node returns per page (`rpc.GetLastKeyStatesPageLimit`: default and maximum).
pub const KEY_STATES_PAGE: u32 = 10;

/// A page of a listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pagination {
    /// Items to skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
    /// Items to return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Where a page sits in a listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageMetadata {
    /// 1-based page number.
    pub page: u32,
    /// Page size.
    pub per_page: u32,
    /// Items in the whole listing.
    pub total_count: u32,
    /// Pages in the whole listing.
    pub page_count: u32,
}

/// `app_sessions.v1.get_last_key_states` request (`AppSessionsV1GetLastKeyStatesRequest` in layer-3/nitrolite
/// `pkg/rpc/api.go`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetLastKeyStates {
    /// The delegating wallet.
    #[serde(with = "lower_address")]
    pub user_address: Address,
    /// Only this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_key: Option<Address>,
    /// Also expired or revoked keys (newer nodes; older ones return every latest state and ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_inactive: Option<bool>,
    /// Which page (newer nodes page by [`KEY_STATES_PAGE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
}

/// `app_sessions.v1.get_last_key_states` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStates {
    /// The latest state of each matching key.
    #[serde(default)]
    pub states: Vec<crate::AppSessionKeyState>,
    /// Paging (absent from older nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PageMetadata>,
}

impl Client {
    /// `app_sessions.v1.submit_session_key_state`: registers, extends, rotates or revokes an app session key.
    pub async fn submit_session_key_state(&self, state: &crate::AppSessionKeyState) -> Result<()> {
        let payload = serde_json::json!({ "state": state });
        self.request::<_, Value>(SUBMIT_SESSION_KEY_STATE, &payload).await.map(drop)
    }

    /// `app_sessions.v1.get_last_key_states`: the latest state of every active app session key of `user`, all
    /// pages.
    pub async fn get_last_key_states(
        &self,
        user: Address,
    ) -> Result<Vec<crate::AppSessionKeyState>> {
        let mut states = Vec::new();
        loop {
            let req = GetLastKeyStates {
                user_address: user,
                session_key: None,
                include_inactive: None,
                pagination: Some(Pagination {
                    offset: Some(u32::try_from(states.len()).unwrap_or(u32::MAX)),
                    limit: Some(KEY_STATES_PAGE),
                }),
            };
            let page: KeyStates = self.request(GET_LAST_KEY_STATES, &req).await?;
            let got = page.states.len();
            states.extend(page.states);
            let total = page.metadata.map(|m| m.total_count as usize);
            if got == 0 || total.is_none_or(|total| states.len() >= total) {
                return Ok(states);
            }
        }
    }
}

/// `user.v1.get_transactions` request: a wallet's ledger history, optionally filtered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetTransactions {
    /// Lower-case wallet.
    pub wallet: String,
    /// Only this asset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// Only this transaction type (the node's `core.TransactionType` number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_type: Option<u8>,
    /// Offset and limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
    /// Unix seconds, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_time: Option<u64>,
    /// Unix seconds, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_time: Option<u64>,
}

/// One ledger transaction (`TransactionV1`); fields this client does not interpret are kept in `extra`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// Asset symbol.
    #[serde(default)]
    pub asset: Option<String>,
    /// Human units.
    #[serde(default)]
    pub amount: Option<Amount>,
    /// Sending account (wallet, channel or app session id).
    #[serde(default)]
    pub from_account: Option<String>,
    /// Receiving account.
    #[serde(default)]
    pub to_account: Option<String>,
    /// Everything else (id, type, timestamps, state ids).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `user.v1.get_transactions` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transactions {
    /// The page of transactions.
    #[serde(default)]
    pub transactions: Vec<Transaction>,
    /// Where the page sits.
    #[serde(default)]
    pub metadata: Option<PageMetadata>,
}

impl Client {
    /// `user.v1.get_transactions`.
    pub async fn get_transactions(&self, req: &GetTransactions) -> Result<Transactions> {
        self.request(GET_TRANSACTIONS, req).await
    }
}

#[cfg(test)]
mod transaction_tests {
    use super::*;

    #[test]
    fn transactions_decode_with_unknown_fields_kept() {
        let answer = serde_json::json!({
            "transactions": [{"id": "0xabc", "tx_type": 3, "from_account": "0x7a9e", "to_account": "0xa1a1",
                              "asset": "usdc", "amount": "0.0010", "created_at": "1795792113"}],
            "metadata": {"page": 1, "per_page": 10, "total_count": 1, "page_count": 1}
        });
        let t: Transactions = serde_json::from_value(answer).unwrap();
        assert_eq!(t.transactions[0].amount.unwrap().to_string(), "0.001");
        assert_eq!(t.transactions[0].extra["tx_type"], 3);
        let req = GetTransactions {
            wallet: "0xa1a1".into(),
            asset: Some("usdc".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"wallet": "0xa1a1", "asset": "usdc"})
        );
    }
}
