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

/// `node.v1.ping`.
pub const PING: &str = "node.v1.ping";
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
