-- Cheaper indexer writes: fewer indexes per raw row, an undo log the server does not parse, room for in-place
-- updates of derived rows. Measured in docs/BENCHMARKS.md ("Indexer backfill"); reasons in docs/INDEXER.md.

-- Raw event tables are keyed by (chain_id, block_number, log_index). Only canonical logs are ever stored (a batch
-- writes blocks above the cursor; a rollback deletes the rows above the common ancestor in the transaction that
-- moves the cursor back), so this names a log as exactly as (chain_id, block_hash, log_index) did, and it makes the
-- separate (chain_id, block_number) index of every raw table redundant: one index fewer per row written. A row of
-- another fork at the same position, were one ever left behind, now fails the batch instead of sitting beside the
-- canonical one.
DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'vault_deposits', 'vault_withdrawal_requests', 'vault_withdrawal_cancellations', 'vault_withdrawals',
        'vault_grant_registrations', 'vault_settlements', 'vault_settlement_skips', 'vault_earnings_withdrawals',
        'vault_admin_events', 'registry_artist_registrations', 'registry_rate_changes', 'registry_track_events',
        'registry_record_changes', 'ens_events'
    ] LOOP
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I, ADD PRIMARY KEY (chain_id, block_number, log_index)',
                       t, t || '_pkey');
        EXECUTE format('DROP INDEX %I', t || '_block');
    END LOOP;
END
$$;

-- Settlements by grant are read through vault_settlements_grant_block (0005); (grant_id, payee) added nothing.
DROP INDEX vault_settlements_grant;

-- The undo log holds key and previous row as the indexer's JSON, in BYTEA: written by binary COPY without the
-- server parsing JSON, read back only by the indexer. No primary key: entries are only appended (by COPY, once per
-- block and key), read and deleted by block range.
ALTER TABLE indexer_undo DROP CONSTRAINT indexer_undo_pkey;
ALTER TABLE indexer_undo
    ALTER COLUMN key TYPE BYTEA USING convert_to(key::text, 'UTF8'),
    ALTER COLUMN previous TYPE BYTEA USING convert_to(previous::text, 'UTF8');
CREATE INDEX indexer_undo_block ON indexer_undo (chain_id, block_number);

-- Derived rows the fold updates once per batch: free room on their pages lets an update stay on its page (a HOT
-- update) and skip index maintenance, since no indexed column changes.
ALTER TABLE listener_accounts SET (fillfactor = 50);
ALTER TABLE payee_earnings SET (fillfactor = 50);
ALTER TABLE grant_spend SET (fillfactor = 50);
ALTER TABLE settled_pairs SET (fillfactor = 50);
ALTER TABLE settlement_hourly SET (fillfactor = 50);
