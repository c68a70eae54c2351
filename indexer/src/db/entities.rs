//! The derived tables (see `migrations/0001_init.sql`, "Derived state", and `0015_splits_tips.sql`).

use alloy::primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};

use super::{
    entity::Entity,
    sql::{Kind, Schema, Value},
};

type It = std::vec::IntoIter<Value>;

fn next(values: &mut It) -> Value {
    values.next().expect("row has every column")
}

/// `listener_accounts`: a listener's vault account as the contract has it, plus running totals.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ListenerAccount {
    pub(crate) available: U256,
    pub(crate) thawing: U256,
    pub(crate) thaw_end: Option<i64>,
    pub(crate) deposited_total: U256,
    pub(crate) spent_total: U256,
    pub(crate) withdrawn_total: U256,
    pub(crate) updated_block: i64,
}

impl Entity for ListenerAccount {
    type Key = Address;
    const TABLE: &'static str = "listener_accounts";
    const KEY: Schema = &[("listener", Kind::Bytes)];
    const COLUMNS: Schema = &[
        ("available", Kind::Numeric),
        ("thawing", Kind::Numeric),
        ("thaw_end", Kind::Time),
        ("deposited_total", Kind::Numeric),
        ("spent_total", Kind::Numeric),
        ("withdrawn_total", Kind::Numeric),
        ("updated_block", Kind::Int),
    ];

    fn key_values(key: &Self::Key) -> Vec<Value> {
        vec![(*key).into()]
    }
    fn key_from(v: &mut It) -> Self::Key {
        next(v).address()
    }
    fn values(&self) -> Vec<Value> {
        vec![
            self.available.into(),
            self.thawing.into(),
            self.thaw_end.map_or(Value::Null, Value::Time),
            self.deposited_total.into(),
            self.spent_total.into(),
            self.withdrawn_total.into(),
            Value::Int(self.updated_block),
        ]
    }
    fn from_values(v: &mut It) -> Self {
        Self {
            available: next(v).u256(),
            thawing: next(v).u256(),
            thaw_end: next(v).opt_time(),
            deposited_total: next(v).u256(),
            spent_total: next(v).u256(),
            withdrawn_total: next(v).u256(),
            updated_block: next(v).int(),
        }
    }
}

/// `payee_earnings`: what a payee earned, paid in fees and withdrew.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct PayeeEarnings {
    pub(crate) earned_total: U256,
    pub(crate) fees_total: U256,
    pub(crate) withdrawn_total: U256,
    pub(crate) withdrawable: U256,
    pub(crate) settlements: i64,
    pub(crate) updated_block: i64,
}

impl Entity for PayeeEarnings {
    type Key = Address;
    const TABLE: &'static str = "payee_earnings";
    const KEY: Schema = &[("payee", Kind::Bytes)];
    const COLUMNS: Schema = &[
        ("earned_total", Kind::Numeric),
        ("fees_total", Kind::Numeric),
        ("withdrawn_total", Kind::Numeric),
        ("withdrawable", Kind::Numeric),
        ("settlements", Kind::Int),
        ("updated_block", Kind::Int),
    ];

    fn key_values(key: &Self::Key) -> Vec<Value> {
        vec![(*key).into()]
    }
    fn key_from(v: &mut It) -> Self::Key {
        next(v).address()
    }
    fn values(&self) -> Vec<Value> {
        vec![
            self.earned_total.into(),
            self.fees_total.into(),
            self.withdrawn_total.into(),
            self.withdrawable.into(),
            Value::Int(self.settlements),
            Value::Int(self.updated_block),
        ]
    }
    fn from_values(v: &mut It) -> Self {
        Self {
            earned_total: next(v).u256(),
            fees_total: next(v).u256(),
            withdrawn_total: next(v).u256(),
            withdrawable: next(v).u256(),
            settlements: next(v).int(),
            updated_block: next(v).int(),
        }
    }
}

/// `grant_spend`: a registered grant and its total spend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct GrantSpend {
    pub(crate) listener: Address,
    pub(crate) session_key: Address,
    pub(crate) cap: U256,
    pub(crate) expires_at: i64,
    pub(crate) spent: U256,
    pub(crate) updated_block: i64,
}

impl Entity for GrantSpend {
    type Key = B256;
    const TABLE: &'static str = "grant_spend";
    const KEY: Schema = &[("grant_id", Kind::Bytes)];
    const COLUMNS: Schema = &[
        ("listener", Kind::Bytes),
        ("session_key", Kind::Bytes),
        ("cap", Kind::Numeric),
        ("expires_at", Kind::Time),
        ("spent", Kind::Numeric),
        ("updated_block", Kind::Int),
    ];

    fn key_values(key: &Self::Key) -> Vec<Value> {
        vec![(*key).into()]
    }
    fn key_from(v: &mut It) -> Self::Key {
        next(v).b256()
    }
    fn values(&self) -> Vec<Value> {
        vec![
            self.listener.into(),
            self.session_key.into(),
            self.cap.into(),
            Value::Time(self.expires_at),
            self.spent.into(),
            Value::Int(self.updated_block),
        ]
    }
    fn from_values(v: &mut It) -> Self {
        Self {
            listener: next(v).address(),
            session_key: next(v).address(),
            cap: next(v).u256(),
            expires_at: next(v).int(),
            spent: next(v).u256(),
            updated_block: next(v).int(),
        }
    }
}

/// `settled_pairs`: the settled cumulative per (grant, payee).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SettledPair {
    pub(crate) listener: Address,
    pub(crate) cumulative: U256,
    pub(crate) updated_block: i64,
}

impl Entity for SettledPair {
    type Key = (B256, Address);
    const TABLE: &'static str = "settled_pairs";
    const KEY: Schema = &[("grant_id", Kind::Bytes), ("payee", Kind::Bytes)];
    const COLUMNS: Schema =
        &[("listener", Kind::Bytes), ("cumulative", Kind::Numeric), ("updated_block", Kind::Int)];

    fn key_values(key: &Self::Key) -> Vec<Value> {
        vec![key.0.into(), key.1.into()]
    }
    fn key_from(v: &mut It) -> Self::Key {
        (next(v).b256(), next(v).address())
    }
    fn values(&self) -> Vec<Value> {
        vec![self.listener.into(), self.cumulative.into(), Value::Int(self.updated_block)]
    }
    fn from_values(v: &mut It) -> Self {
        Self {
            listener: next(v).address(),
            cumulative: next(v).u256(),
            updated_block: next(v).int(),
        }
    }
}

/// `artists`: registry state, the holder of the name token and the address record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Artist {
    pub(crate) label: String,
    pub(crate) name: String,
    pub(crate) owner: Address,
    pub(crate) addr: Option<Address>,
    pub(crate) rate_per_second: U256,
    pub(crate) registered_at: i64,
    pub(crate) registered_block: i64,
    pub(crate) updated_block: i64,
}

impl Entity for Artist {
    type Key = B256;
    const TABLE: &'static str = "artists";
    const KEY: Schema = &[("node", Kind::Bytes)];
    const COLUMNS: Schema = &[
        ("label", Kind::Text),
        ("name", Kind::Text),
        ("owner", Kind::Bytes),
        ("addr", Kind::Bytes),
        ("rate_per_second", Kind::Numeric),
        ("registered_at", Kind::Time),
        ("registered_block", Kind::Int),
        ("updated_block", Kind::Int),
    ];

    fn key_values(key: &Self::Key) -> Vec<Value> {
        vec![(*key).into()]
    }
    fn key_from(v: &mut It) -> Self::Key {
        next(v).b256()
    }
    fn values(&self) -> Vec<Value> {
        vec![
            Value::Text(self.label.clone()),
            Value::Text(self.name.clone()),
            self.owner.into(),
            self.addr.into(),
            self.rate_per_second.into(),
            Value::Time(self.registered_at),
            Value::Int(self.registered_block),
            Value::Int(self.updated_block),
        ]
    }
    fn from_values(v: &mut It) -> Self {
        Self {
            label: next(v).text(),
            name: next(v).text(),
            owner: next(v).address(),
            addr: next(v).opt_address(),
            rate_per_second: next(v).u256(),
            registered_at: next(v).int(),
            registered_block: next(v).int(),
            updated_block: next(v).int(),
        }
    }
}

/// `artist_texts`: an artist's text records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ArtistText {
    pub(crate) value: String,
    pub(crate) updated_block: i64,
}

impl Entity for ArtistText {
    type Key = (B256, String);
    const TABLE: &'static str = "artist_texts";
    const KEY: Schema = &[("node", Kind::Bytes), ("key", Kind::Text)];
    const COLUMNS: Schema = &[("value", Kind::Text), ("updated_block", Kind::Int)];

    fn key_values(key: &Self::Key) -> Vec<Value> {
        vec![key.0.into(), Value::Text(key.1.clone())]
    }
    fn key_from(v: &mut It) -> Self::Key {
        (next(v).b256(), next(v).text())
    }
    fn values(&self) -> Vec<Value> {
        vec![Value::Text(self.value.clone()), Value::Int(self.updated_block)]
    }
    fn from_values(v: &mut It) -> Self {
        Self { value: next(v).text(), updated_block: next(v).int() }
    }
}

/// `tracks`: the catalogue. Keyed by the decimal track id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Track {
    pub(crate) artist_node: B256,
    pub(crate) title: String,
    pub(crate) duration: i64,
    pub(crate) rate_per_second: U256,
    pub(crate) content_hash: B256,
    pub(crate) metadata_uri: String,
    pub(crate) published: bool,
    pub(crate) published_at: i64,
    pub(crate) updated_block: i64,
}

impl Entity for Track {
    type Key = U256;
    const TABLE: &'static str = "tracks";
    const KEY: Schema = &[("track_id", Kind::Numeric)];
    const COLUMNS: Schema = &[
        ("artist_node", Kind::Bytes),
        ("title", Kind::Text),
        ("duration", Kind::Int),
        ("rate_per_second", Kind::Numeric),
        ("content_hash", Kind::Bytes),
        ("metadata_uri", Kind::Text),
        ("published", Kind::Bool),
        ("published_at", Kind::Time),
        ("updated_block", Kind::Int),
    ];

    fn key_values(key: &Self::Key) -> Vec<Value> {
        vec![(*key).into()]
    }
    fn key_from(v: &mut It) -> Self::Key {
        next(v).u256()
    }
    fn values(&self) -> Vec<Value> {
        vec![
            self.artist_node.into(),
            Value::Text(self.title.clone()),
            Value::Int(self.duration),
            self.rate_per_second.into(),
            self.content_hash.into(),
            Value::Text(self.metadata_uri.clone()),
            Value::Bool(self.published),
            Value::Time(self.published_at),
            Value::Int(self.updated_block),
        ]
    }
    fn from_values(v: &mut It) -> Self {
        Self {
            artist_node: next(v).b256(),
            title: next(v).text(),
            duration: next(v).int(),
            rate_per_second: next(v).u256(),
            content_hash: next(v).b256(),
            metadata_uri: next(v).text(),
            published: next(v).bool(),
            published_at: next(v).int(),
            updated_block: next(v).int(),
        }
    }
}

/// `settlement_hourly`: settled volume per payee and hour (unix seconds of the hour's start).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct SettlementHourly {
    pub(crate) amount: U256,
    pub(crate) fees: U256,
    pub(crate) settlements: i64,
}

impl Entity for SettlementHourly {
    type Key = (i64, Address);
    const TABLE: &'static str = "settlement_hourly";
    const KEY: Schema = &[("hour", Kind::Time), ("payee", Kind::Bytes)];
    const COLUMNS: Schema =
        &[("amount", Kind::Numeric), ("fees", Kind::Numeric), ("settlements", Kind::Int)];

    fn key_values(key: &Self::Key) -> Vec<Value> {
        vec![Value::Time(key.0), key.1.into()]
    }
    fn key_from(v: &mut It) -> Self::Key {
        (next(v).int(), next(v).address())
    }
    fn values(&self) -> Vec<Value> {
        vec![self.amount.into(), self.fees.into(), Value::Int(self.settlements)]
    }
    fn from_values(v: &mut It) -> Self {
        Self { amount: next(v).u256(), fees: next(v).u256(), settlements: next(v).int() }
    }
}

/// `grant_revocations`: a grant its listener revoked, and when the vault starts refusing it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct GrantRevocation {
    /// Unix seconds of the block that revoked it.
    pub(crate) revoked_at: i64,
    pub(crate) effective_at: i64,
    pub(crate) updated_block: i64,
}

impl Entity for GrantRevocation {
    type Key = (B256, Address);
    const TABLE: &'static str = "grant_revocations";
    const KEY: Schema = &[("grant_id", Kind::Bytes), ("listener", Kind::Bytes)];
    const COLUMNS: Schema =
        &[("revoked_at", Kind::Time), ("effective_at", Kind::Time), ("updated_block", Kind::Int)];

    fn key_values(key: &Self::Key) -> Vec<Value> {
        vec![key.0.into(), key.1.into()]
    }
    fn key_from(v: &mut It) -> Self::Key {
        (next(v).b256(), next(v).address())
    }
    fn values(&self) -> Vec<Value> {
        vec![
            Value::Time(self.revoked_at),
            Value::Time(self.effective_at),
            Value::Int(self.updated_block),
        ]
    }
    fn from_values(v: &mut It) -> Self {
        Self {
            revoked_at: next(v).int(),
            effective_at: next(v).int(),
            updated_block: next(v).int(),
        }
    }
}

/// `listener_nonce_floors`: the vault's `NonceFloor` of a listener. The default is a listener that never raised
/// it: floor 0, in force since the epoch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct NonceFloor {
    /// The newest floor.
    pub(crate) floor: u64,
    /// The floor in force until `floor_from`.
    pub(crate) previous: u64,
    /// Unix seconds from which `floor` is in force.
    pub(crate) floor_from: i64,
    pub(crate) updated_block: i64,
}

impl Entity for NonceFloor {
    type Key = Address;
    const TABLE: &'static str = "listener_nonce_floors";
    const KEY: Schema = &[("listener", Kind::Bytes)];
    const COLUMNS: Schema = &[
        ("floor", Kind::Numeric),
        ("previous", Kind::Numeric),
        ("floor_from", Kind::Time),
        ("updated_block", Kind::Int),
    ];

    fn key_values(key: &Self::Key) -> Vec<Value> {
        vec![(*key).into()]
    }
    fn key_from(v: &mut It) -> Self::Key {
        next(v).address()
    }
    fn values(&self) -> Vec<Value> {
        vec![
            Value::Numeric(self.floor.to_string()),
            Value::Numeric(self.previous.to_string()),
            Value::Time(self.floor_from),
            Value::Int(self.updated_block),
        ]
    }
    fn from_values(v: &mut It) -> Self {
        Self {
            floor: next(v).u256().saturating_to(),
            previous: next(v).u256().saturating_to(),
            floor_from: next(v).int(),
            updated_block: next(v).int(),
        }
    }
}

/// `splits`: every split version ever set, keyed by its payee address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Split {
    pub(crate) node: B256,
    pub(crate) track_id: U256,
    pub(crate) version: u64,
    /// In `SplitSet` order: recipient `i` is paid `parts[i]` of a `SplitPaid`.
    pub(crate) recipients: Vec<Address>,
    /// Basis points, as `recipients`.
    pub(crate) shares: Vec<u16>,
    pub(crate) set_at: i64,
    pub(crate) set_block: i64,
    pub(crate) cleared_at: Option<i64>,
    pub(crate) cleared_block: Option<i64>,
    pub(crate) updated_block: i64,
}

impl Entity for Split {
    type Key = Address;
    const TABLE: &'static str = "splits";
    const KEY: Schema = &[("split", Kind::Bytes)];
    const COLUMNS: Schema = &[
        ("node", Kind::Bytes),
        ("track_id", Kind::Numeric),
        ("version", Kind::Int),
        ("recipients", Kind::BytesArray),
        ("shares", Kind::Int4Array),
        ("set_at", Kind::Time),
        ("set_block", Kind::Int),
        ("cleared_at", Kind::Time),
        ("cleared_block", Kind::Int),
        ("updated_block", Kind::Int),
    ];

    fn key_values(key: &Self::Key) -> Vec<Value> {
        vec![(*key).into()]
    }
    fn key_from(v: &mut It) -> Self::Key {
        next(v).address()
    }
    fn values(&self) -> Vec<Value> {
        vec![
            self.node.into(),
            self.track_id.into(),
            Value::Int(self.version as i64),
            Value::Array(self.recipients.iter().map(|r| (*r).into()).collect()),
            Value::Array(self.shares.iter().map(|s| Value::Int(i64::from(*s))).collect()),
            Value::Time(self.set_at),
            Value::Int(self.set_block),
            self.cleared_at.map_or(Value::Null, Value::Time),
            self.cleared_block.map_or(Value::Null, Value::Int),
            Value::Int(self.updated_block),
        ]
    }
    fn from_values(v: &mut It) -> Self {
        Self {
            node: next(v).b256(),
            track_id: next(v).u256(),
            version: next(v).int() as u64,
            recipients: next(v).array().into_iter().map(Value::address).collect(),
            shares: next(v).array().into_iter().map(|s| s.int() as u16).collect(),
            set_at: next(v).int(),
            set_block: next(v).int(),
            cleared_at: next(v).opt_time(),
            cleared_block: next(v).opt_time(),
            updated_block: next(v).int(),
        }
    }
}

/// `split_in_force`: the split version that new plays of an artist (track 0) or a track pay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SplitInForce {
    pub(crate) split: Address,
    pub(crate) updated_block: i64,
}

impl Entity for SplitInForce {
    type Key = (B256, U256);
    const TABLE: &'static str = "split_in_force";
    const KEY: Schema = &[("node", Kind::Bytes), ("track_id", Kind::Numeric)];
    const COLUMNS: Schema = &[("split", Kind::Bytes), ("updated_block", Kind::Int)];

    fn key_values(key: &Self::Key) -> Vec<Value> {
        vec![key.0.into(), key.1.into()]
    }
    fn key_from(v: &mut It) -> Self::Key {
        (next(v).b256(), next(v).u256())
    }
    fn values(&self) -> Vec<Value> {
        vec![self.split.into(), Value::Int(self.updated_block)]
    }
    fn from_values(v: &mut It) -> Self {
        Self { split: next(v).address(), updated_block: next(v).int() }
    }
}

/// `split_earnings`: what one recipient of one split version was paid.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct SplitEarnings {
    pub(crate) earned: U256,
    pub(crate) from_tips: U256,
    pub(crate) payments: i64,
    pub(crate) updated_block: i64,
}

impl Entity for SplitEarnings {
    type Key = (Address, Address);
    const TABLE: &'static str = "split_earnings";
    const KEY: Schema = &[("split", Kind::Bytes), ("recipient", Kind::Bytes)];
    const COLUMNS: Schema = &[
        ("earned", Kind::Numeric),
        ("from_tips", Kind::Numeric),
        ("payments", Kind::Int),
        ("updated_block", Kind::Int),
    ];

    fn key_values(key: &Self::Key) -> Vec<Value> {
        vec![key.0.into(), key.1.into()]
    }
    fn key_from(v: &mut It) -> Self::Key {
        (next(v).address(), next(v).address())
    }
    fn values(&self) -> Vec<Value> {
        vec![
            self.earned.into(),
            self.from_tips.into(),
            Value::Int(self.payments),
            Value::Int(self.updated_block),
        ]
    }
    fn from_values(v: &mut It) -> Self {
        Self {
            earned: next(v).u256(),
            from_tips: next(v).u256(),
            payments: next(v).int(),
            updated_block: next(v).int(),
        }
    }
}
