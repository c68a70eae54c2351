//! Comparing what an indexer wrote: every mirrored table, as sorted JSON rows.

use std::collections::BTreeMap;

use crate::TestDb;

/// A table name to its rows, each as JSON, sorted.
pub type Dump = BTreeMap<String, Vec<serde_json::Value>>;

/// Every mirrored table as sorted JSON rows (bookkeeping columns and tables left out).
pub async fn dump(db: &TestDb) -> crate::Result<Dump> {
    let tables = [
        "chain_cursor",
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
        "listener_accounts",
        "payee_earnings",
        "grant_spend",
        "settled_pairs",
        "artists",
        "artist_texts",
        "tracks",
        "settlement_hourly",
        "grant_revocations",
        "listener_nonce_floors",
        "splits",
        "split_in_force",
        "split_earnings",
    ];
    let mut out = BTreeMap::new();
    for table in tables {
        let rows: Vec<serde_json::Value> = sqlx::query_scalar(&format!(
            "SELECT to_jsonb(t) - 'updated_at' FROM {table} t ORDER BY (to_jsonb(t) - 'updated_at')::text"
        ))
        .fetch_all(db.pool())
        .await?;
        out.insert(table.to_owned(), rows);
    }
    Ok(out)
}

/// Asserts two dumps are equal, table by table, with a readable difference.
pub fn assert_same(
    actual: &BTreeMap<String, Vec<serde_json::Value>>,
    expected: &BTreeMap<String, Vec<serde_json::Value>>,
) {
    for (table, rows) in expected {
        let got = &actual[table];
        if got != rows {
            let missing: Vec<_> = rows.iter().filter(|r| !got.contains(r)).collect();
            let extra: Vec<_> = got.iter().filter(|r| !rows.contains(r)).collect();
            panic!(
                "table {table} differs from a fresh index:\n  missing: {missing:#?}\n  extra: {extra:#?}"
            );
        }
    }
}
