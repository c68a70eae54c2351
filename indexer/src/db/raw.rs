//! The raw event tables: one row per log, written with one `COPY` per table and batch.
//!
//! `COPY` cannot skip rows that already exist, and need not: a raw row's key is its log's `(chain_id, block_number,
//! log_index)`, every raw row is at or below the cursor (a batch writes its blocks in the transaction that moves
//! the cursor over them; a rollback deletes the rows above the ancestor in the transaction that moves the cursor
//! back), and a batch writes only blocks above the cursor, each log once. So a batch's rows cannot exist yet. If
//! they somehow did (a second indexer on the same chain), the `COPY` fails the batch's transaction rather than
//! skipping rows whose derived effects the fold would then apply twice.

use alloy::primitives::B256;
use beatstream_primitives::contracts::{
    BeatStreamRegistry::BeatStreamRegistryEvents as Registry,
    BeatStreamVault::BeatStreamVaultEvents as Vault, ENSRegistry::ENSRegistryEvents as Ens,
};
use sqlx::{Postgres, Transaction};

use crate::{
    db::sql::{Columns, Kind, Schema, Value, clamp_time, copy_in},
    events::{Event, EventKind, LogPosition, TrackDetails, dec, split_source},
};

/// Every raw table, for rollbacks.
pub(crate) const TABLES: &[&str] = &[
    "vault_deposits",
    "vault_withdrawal_requests",
    "vault_withdrawal_cancellations",
    "vault_withdrawals",
    "vault_grant_registrations",
    "vault_settlements",
    "vault_settlement_skips",
    "vault_earnings_withdrawals",
    "vault_admin_events",
    "vault_grant_revocations",
    "vault_nonce_floor_raises",
    "vault_split_sets",
    "vault_split_clears",
    "vault_split_payments",
    "vault_tips",
    "vault_tip_skips",
    "registry_artist_registrations",
    "registry_rate_changes",
    "registry_track_events",
    "registry_record_changes",
    "registry_name_transfers",
    "ens_events",
];

/// Rows for one raw table: the common position columns, then the event's own.
struct Table {
    name: &'static str,
    schema: Vec<(&'static str, Kind)>,
    columns: Columns,
}

impl Table {
    fn new(name: &'static str, own: Schema) -> Self {
        let mut schema = vec![
            ("block_number", Kind::Int),
            ("block_hash", Kind::Bytes),
            ("block_time", Kind::Time),
            ("tx_hash", Kind::Bytes),
            ("log_index", Kind::Int4),
        ];
        schema.extend_from_slice(own);
        let columns = Columns::new(schema.iter().map(|(_, k)| *k));
        Self { name, schema, columns }
    }

    fn push(&mut self, at: LogPosition, row: Vec<Value>) {
        let position = [
            Value::Int(at.block_number as i64),
            Value::from(at.block_hash),
            Value::Time(clamp_time(at.block_time)),
            Value::from(at.tx_hash),
            Value::Int(at.log_index as i64),
        ];
        self.columns.push(position.into_iter().chain(row));
    }

    async fn insert(self, tx: &mut Transaction<'_, Postgres>, chain_id: i64) -> sqlx::Result<()> {
        copy_in(tx, self.name, chain_id, &self.schema, self.columns).await
    }
}

/// The raw rows of one batch, grouped by table.
pub(crate) struct RawBatch {
    tables: Vec<Table>,
}

/// Indexes into [`RawBatch::tables`].
mod t {
    pub(super) const DEPOSITS: usize = 0;
    pub(super) const WITHDRAWAL_REQUESTS: usize = 1;
    pub(super) const WITHDRAWAL_CANCELLATIONS: usize = 2;
    pub(super) const WITHDRAWALS: usize = 3;
    pub(super) const GRANTS: usize = 4;
    pub(super) const SETTLEMENTS: usize = 5;
    pub(super) const SKIPS: usize = 6;
    pub(super) const EARNINGS_WITHDRAWALS: usize = 7;
    pub(super) const ADMIN: usize = 8;
    pub(super) const REVOCATIONS: usize = 9;
    pub(super) const NONCE_FLOORS: usize = 10;
    pub(super) const SPLIT_SETS: usize = 11;
    pub(super) const SPLIT_CLEARS: usize = 12;
    pub(super) const SPLIT_PAYMENTS: usize = 13;
    pub(super) const TIPS: usize = 14;
    pub(super) const TIP_SKIPS: usize = 15;
    pub(super) const ARTISTS: usize = 16;
    pub(super) const RATES: usize = 17;
    pub(super) const TRACKS: usize = 18;
    pub(super) const RECORDS: usize = 19;
    pub(super) const NAME_TRANSFERS: usize = 20;
    pub(super) const ENS: usize = 21;
}

impl RawBatch {
    pub(crate) fn new() -> Self {
        use Kind::*;
        let tables = vec![
            Table::new(TABLES[0], &[("listener", Bytes), ("sender", Bytes), ("amount", Numeric)]),
            Table::new(
                TABLES[1],
                &[
                    ("listener", Bytes),
                    ("amount", Numeric),
                    ("thawing", Numeric),
                    ("thaw_end", Time),
                ],
            ),
            Table::new(TABLES[2], &[("listener", Bytes), ("amount", Numeric)]),
            Table::new(
                TABLES[3],
                &[("listener", Bytes), ("recipient", Bytes), ("amount", Numeric)],
            ),
            Table::new(
                TABLES[4],
                &[
                    ("grant_id", Bytes),
                    ("listener", Bytes),
                    ("session_key", Bytes),
                    ("cap", Numeric),
                    ("expires_at", Time),
                    ("nonce", Numeric),
                ],
            ),
            Table::new(
                TABLES[5],
                &[
                    ("grant_id", Bytes),
                    ("listener", Bytes),
                    ("payee", Bytes),
                    ("amount", Numeric),
                    ("cumulative", Numeric),
                    ("fee", Numeric),
                ],
            ),
            Table::new(
                TABLES[6],
                &[("grant_id", Bytes), ("payee", Bytes), ("cumulative", Numeric), ("reason", Int2)],
            ),
            Table::new(TABLES[7], &[("payee", Bytes), ("recipient", Bytes), ("amount", Numeric)]),
            Table::new(TABLES[8], &[("kind", Text), ("data", Json)]),
            Table::new(
                TABLES[9],
                &[("listener", Bytes), ("grant_id", Bytes), ("effective_at", Time)],
            ),
            Table::new(
                TABLES[10],
                &[("listener", Bytes), ("nonce_floor", Numeric), ("effective_at", Time)],
            ),
            Table::new(
                TABLES[11],
                &[
                    ("node", Bytes),
                    ("track_id", Numeric),
                    ("split", Bytes),
                    ("version", Int),
                    ("recipients", BytesArray),
                    ("shares", Int4Array),
                ],
            ),
            Table::new(
                TABLES[12],
                &[("node", Bytes), ("track_id", Numeric), ("split", Bytes), ("version", Int)],
            ),
            Table::new(
                TABLES[13],
                &[
                    ("split", Bytes),
                    ("amount", Numeric),
                    ("parts", NumericArray),
                    ("source", Text),
                    ("source_log_index", Int4),
                ],
            ),
            Table::new(
                TABLES[14],
                &[
                    ("grant_id", Bytes),
                    ("listener", Bytes),
                    ("payee", Bytes),
                    ("tip_id", Numeric),
                    ("amount", Numeric),
                    ("fee", Numeric),
                    ("message", Bytes),
                ],
            ),
            Table::new(
                TABLES[15],
                &[("grant_id", Bytes), ("payee", Bytes), ("tip_id", Numeric), ("reason", Int2)],
            ),
            Table::new(
                TABLES[16],
                &[("node", Bytes), ("owner", Bytes), ("label", Text), ("rate_per_second", Numeric)],
            ),
            Table::new(TABLES[17], &[("node", Bytes), ("rate_per_second", Numeric)]),
            Table::new(
                TABLES[18],
                &[
                    ("kind", Text),
                    ("track_id", Numeric),
                    ("artist_node", Bytes),
                    ("title", Text),
                    ("duration", Int4),
                    ("rate_per_second", Numeric),
                    ("content_hash", Bytes),
                    ("metadata_uri", Text),
                ],
            ),
            Table::new(
                TABLES[19],
                &[("node", Bytes), ("kind", Text), ("key", Text), ("value", Text), ("addr", Bytes)],
            ),
            Table::new(TABLES[20], &[("node", Bytes), ("from_addr", Bytes), ("to_addr", Bytes)]),
            Table::new(
                TABLES[21],
                &[
                    ("kind", Text),
                    ("node", Bytes),
                    ("label", Bytes),
                    ("owner", Bytes),
                    ("resolver", Bytes),
                    ("ttl", Numeric),
                ],
            ),
        ];
        Self { tables }
    }

    /// Number of rows across tables.
    pub(crate) fn len(&self) -> usize {
        self.tables.iter().map(|t| t.columns.len()).sum()
    }

    /// Adds the raw row of `events[i]`; the events before it in its block are there to name what a `SplitPaid`
    /// pays out. ENS events reach here already filtered to the beatstream.eth subtree.
    pub(crate) fn push(&mut self, events: &[Event], i: usize) {
        use Value::*;
        let event = &events[i];
        let at = event.at;
        let (table, row): (usize, Vec<Value>) = match &event.kind {
            EventKind::Vault(e) => match e {
                Vault::Deposited(e) => {
                    (t::DEPOSITS, vec![e.listener.into(), e.from.into(), Numeric(dec(e.amount))])
                }
                Vault::WithdrawalRequested(e) => (
                    t::WITHDRAWAL_REQUESTS,
                    vec![
                        e.listener.into(),
                        Numeric(dec(e.amount)),
                        Numeric(dec(e.thawing)),
                        Time(clamp_time(e.thawEnd)),
                    ],
                ),
                Vault::WithdrawalCancelled(e) => {
                    (t::WITHDRAWAL_CANCELLATIONS, vec![e.listener.into(), Numeric(dec(e.amount))])
                }
                Vault::Withdrawn(e) => {
                    (t::WITHDRAWALS, vec![e.listener.into(), e.to.into(), Numeric(dec(e.amount))])
                }
                Vault::GrantRegistered(e) => (
                    t::GRANTS,
                    vec![
                        e.grantId.into(),
                        e.listener.into(),
                        e.sessionKey.into(),
                        Numeric(dec(e.cap)),
                        Time(clamp_time(e.expiresAt)),
                        Numeric(e.nonce.to_string()),
                    ],
                ),
                Vault::Settled(e) => (
                    t::SETTLEMENTS,
                    vec![
                        e.grantId.into(),
                        e.listener.into(),
                        e.payee.into(),
                        Numeric(dec(e.amount)),
                        Numeric(dec(e.cumulative)),
                        Numeric(dec(e.fee)),
                    ],
                ),
                Vault::SettlementSkipped(e) => (
                    t::SKIPS,
                    vec![
                        e.grantId.into(),
                        e.payee.into(),
                        Numeric(dec(e.cumulative)),
                        Int(i64::from(e.reason)),
                    ],
                ),
                Vault::EarningsWithdrawn(e) => (
                    t::EARNINGS_WITHDRAWALS,
                    vec![e.payee.into(), e.to.into(), Numeric(dec(e.amount))],
                ),
                Vault::GrantRevoked(e) => (
                    t::REVOCATIONS,
                    vec![e.listener.into(), e.grantId.into(), Time(clamp_time(e.effectiveAt))],
                ),
                Vault::NonceFloorRaised(e) => (
                    t::NONCE_FLOORS,
                    vec![
                        e.listener.into(),
                        Numeric(e.nonceFloor.to_string()),
                        Time(clamp_time(e.effectiveAt)),
                    ],
                ),
                Vault::FeeScheduled(e) => admin(
                    "fee_scheduled",
                    serde_json::json!({ "feeBps": e.feeBps, "effectiveAt": dec(e.effectiveAt) }),
                ),
                Vault::SettlerUpdated(e) => admin(
                    "settler_updated",
                    serde_json::json!({ "settler": e.settler, "allowed": e.allowed, "effectiveAt": dec(e.effectiveAt) }),
                ),
                Vault::BatchCutShort(e) => admin(
                    "batch_cut_short",
                    serde_json::json!({ "processed": dec(e.processed), "total": dec(e.total) }),
                ),
                Vault::TreasuryUpdated(e) => {
                    admin("treasury_updated", serde_json::json!({ "treasury": e.treasury }))
                }
                Vault::FeesCollected(e) => admin(
                    "fees_collected",
                    serde_json::json!({ "treasury": e.treasury, "amount": dec(e.amount) }),
                ),
                Vault::OwnershipTransferred(e) => admin(
                    "ownership_transferred",
                    serde_json::json!({ "previousOwner": e.previousOwner, "newOwner": e.newOwner }),
                ),
                Vault::OwnershipTransferStarted(e) => admin(
                    "ownership_transfer_started",
                    serde_json::json!({ "previousOwner": e.previousOwner, "newOwner": e.newOwner }),
                ),
                Vault::EIP712DomainChanged(_) => {
                    admin("eip712_domain_changed", serde_json::json!({}))
                }
                Vault::TipsCutShort(e) => admin(
                    "tips_cut_short",
                    serde_json::json!({ "processed": dec(e.processed), "total": dec(e.total) }),
                ),
                Vault::SplitSet(e) => (
                    t::SPLIT_SETS,
                    vec![
                        e.node.into(),
                        Numeric(dec(e.trackId)),
                        e.split.into(),
                        Int(e.version as i64),
                        Array(e.recipients.iter().map(|r| (*r).into()).collect()),
                        Array(e.shares.iter().map(|s| Int(i64::from(*s))).collect()),
                    ],
                ),
                Vault::SplitCleared(e) => (
                    t::SPLIT_CLEARS,
                    vec![
                        e.node.into(),
                        Numeric(dec(e.trackId)),
                        e.split.into(),
                        Int(e.version as i64),
                    ],
                ),
                Vault::SplitPaid(e) => {
                    // `check_split_payments` refused any batch where this is missing.
                    let (source, log_index) =
                        split_source(events, i).expect("a SplitPaid follows its source");
                    (
                        t::SPLIT_PAYMENTS,
                        vec![
                            e.split.into(),
                            Numeric(dec(e.amount)),
                            Array(e.parts.iter().map(|p| Numeric(dec(*p))).collect()),
                            Text(source.as_str().to_owned()),
                            Int(log_index as i64),
                        ],
                    )
                }
                Vault::Tipped(e) => (
                    t::TIPS,
                    vec![
                        e.grantId.into(),
                        e.listener.into(),
                        e.payee.into(),
                        Numeric(dec(e.tipId)),
                        Numeric(dec(e.amount)),
                        Numeric(dec(e.fee)),
                        Bytes(
                            event
                                .tip_message
                                .clone()
                                .unwrap_or_else(|| e.message.as_bytes().to_vec()),
                        ),
                    ],
                ),
                Vault::TipSkipped(e) => (
                    t::TIP_SKIPS,
                    vec![
                        e.grantId.into(),
                        e.payee.into(),
                        Numeric(dec(e.tipId)),
                        Int(i64::from(e.reason)),
                    ],
                ),
            },
            EventKind::Registry(e) => match e {
                Registry::ArtistRegistered(e) => (
                    t::ARTISTS,
                    vec![
                        e.node.into(),
                        e.owner.into(),
                        Text(e.label.clone()),
                        Numeric(dec(e.ratePerSecond)),
                    ],
                ),
                Registry::ArtistRateChanged(e) => {
                    (t::RATES, vec![e.node.into(), Numeric(dec(e.ratePerSecond))])
                }
                Registry::TrackPublished(e) => {
                    (t::TRACKS, track_row("published", &e.clone().into()))
                }
                Registry::TrackUpdated(e) => (t::TRACKS, track_row("updated", &e.clone().into())),
                Registry::TrackUnpublished(e) => (
                    t::TRACKS,
                    vec![
                        Text("unpublished".into()),
                        Numeric(dec(e.trackId)),
                        e.artistNode.into(),
                        Null,
                        Null,
                        Null,
                        Null,
                        Null,
                    ],
                ),
                Registry::AddrChanged(e) => {
                    (t::RECORDS, vec![e.node.into(), Text("addr".into()), Null, Null, e.a.into()])
                }
                Registry::TextChanged(e) => (
                    t::RECORDS,
                    vec![
                        e.node.into(),
                        Text("text".into()),
                        Text(e.key.clone()),
                        Text(e.value.clone()),
                        Null,
                    ],
                ),
                // A name token's id is its node.
                Registry::Transfer(e) => (
                    t::NAME_TRANSFERS,
                    vec![B256::from(e.tokenId).into(), e.from.into(), e.to.into()],
                ),
                // Approvals change who may manage an artist besides its holder, which nothing mirrored reads; the
                // chain answers `getApproved` and `isApprovedForAll` itself.
                Registry::Approval(_) | Registry::ApprovalForAll(_) => return,
            },
            EventKind::Ens(e) => match e {
                Ens::NewOwner(e) => (
                    t::ENS,
                    vec![
                        Text("new_owner".into()),
                        e.node.into(),
                        e.label.into(),
                        e.owner.into(),
                        Null,
                        Null,
                    ],
                ),
                Ens::Transfer(e) => (
                    t::ENS,
                    vec![Text("transfer".into()), e.node.into(), Null, e.owner.into(), Null, Null],
                ),
                Ens::NewResolver(e) => (
                    t::ENS,
                    vec![
                        Text("new_resolver".into()),
                        e.node.into(),
                        Null,
                        Null,
                        e.resolver.into(),
                        Null,
                    ],
                ),
                Ens::NewTTL(e) => (
                    t::ENS,
                    vec![
                        Text("new_ttl".into()),
                        e.node.into(),
                        Null,
                        Null,
                        Null,
                        Numeric(e.ttl.to_string()),
                    ],
                ),
                // Operator approvals are not per name; they are not mirrored.
                Ens::ApprovalForAll(_) => return,
            },
        };
        self.tables[table].push(at, row);
    }

    /// Inserts every table's rows.
    pub(crate) async fn insert(
        self,
        tx: &mut Transaction<'_, Postgres>,
        chain_id: i64,
    ) -> sqlx::Result<()> {
        for table in self.tables {
            table.insert(tx, chain_id).await?;
        }
        Ok(())
    }
}

fn track_row(kind: &str, d: &TrackDetails) -> Vec<Value> {
    vec![
        Value::Text(kind.to_owned()),
        Value::Numeric(dec(d.track_id)),
        d.artist_node.into(),
        Value::Text(d.title.clone()),
        Value::Int(i64::from(d.duration)),
        Value::Numeric(dec(d.rate_per_second)),
        d.content_hash.into(),
        Value::Text(d.metadata_uri.clone()),
    ]
}

fn admin(kind: &str, data: serde_json::Value) -> (usize, Vec<Value>) {
    (t::ADMIN, vec![Value::Text(kind.to_owned()), Value::Json(data)])
}
