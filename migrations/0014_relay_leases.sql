-- The relay's balance guard kept incrementally (docs/DECISIONS.md "Budgets leased to relays", docs/BENCHMARKS.md
-- "Relay cost per voucher-second").
--
-- A relay no longer reads a listener's funds, debts and revocations at every group commit. Under the listener's
-- advisory lock it reads them once and leases itself a budget for one grant: what it may still add to that grant's
-- vouchers without asking again. Its later vouchers for the grant are decided in memory and written by one
-- statement, which also checks that nothing the relay decided on has changed (`guard_epochs`).

-- One row per (grant, relay): what that relay may still add, beyond the vouchers stored, to what the grant's listener
-- owes and to what the grant has spent. Written under the listener's advisory lock; another relay's lease counts
-- against what a relay may lease itself, whole, so the sum of every relay's acked vouchers never passes the
-- listener's funds or the grant's cap. Deleted when the relay's session of the grant closes, and at the relay's start
-- for its own id (a killed run's leases).
CREATE TABLE relay_leases (
    chain_id   BIGINT NOT NULL,
    grant_id   hash32 NOT NULL,
    relay_id   TEXT NOT NULL,
    listener   address NOT NULL,
    amount     amount NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, grant_id, relay_id)
);
CREATE INDEX relay_leases_listener ON relay_leases (chain_id, listener);
CREATE INDEX relay_leases_relay ON relay_leases (relay_id);

-- A counter per listener, raised whenever something the guard decides on may have shrunk what the listener can
-- spend: its available funds fell (a withdrawal request, a settlement, a reorg undoing a deposit), a grant was
-- revoked, or its nonce floor rose. A relay remembers the epoch it read with a lease and writes vouchers only while
-- it is unchanged; otherwise it reads the state again under the lock. Raised by the triggers below, so any writer of
-- these tables (the indexer, a test, an operator) is seen.
CREATE TABLE guard_epochs (
    chain_id BIGINT NOT NULL,
    listener address NOT NULL,
    epoch    BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (chain_id, listener)
);

CREATE FUNCTION guard_epochs_raise(p_chain BIGINT[], p_listener BYTEA[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO guard_epochs AS g (chain_id, listener)
    SELECT DISTINCT c, l FROM unnest(p_chain, p_listener) AS t(c, l) ORDER BY 1, 2
    ON CONFLICT (chain_id, listener) DO UPDATE SET epoch = g.epoch + 1;
$$;

CREATE FUNCTION guard_epochs_accounts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM guard_epochs_raise(array_agg(n.chain_id), array_agg(n.listener))
    FROM updated n JOIN previous o USING (chain_id, listener)
    WHERE n.available < o.available
    HAVING count(*) > 0;
    RETURN NULL;
END;
$$;
CREATE TRIGGER guard_epochs_accounts_updated
    AFTER UPDATE ON listener_accounts REFERENCING OLD TABLE AS previous NEW TABLE AS updated
    FOR EACH STATEMENT EXECUTE FUNCTION guard_epochs_accounts_updated();

CREATE FUNCTION guard_epochs_rows_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM guard_epochs_raise(array_agg(o.chain_id), array_agg(o.listener))
    FROM previous o
    HAVING count(*) > 0;
    RETURN NULL;
END;
$$;
CREATE TRIGGER guard_epochs_accounts_deleted
    AFTER DELETE ON listener_accounts REFERENCING OLD TABLE AS previous
    FOR EACH STATEMENT EXECUTE FUNCTION guard_epochs_rows_gone();

CREATE FUNCTION guard_epochs_rows_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM guard_epochs_raise(array_agg(n.chain_id), array_agg(n.listener))
    FROM written n
    HAVING count(*) > 0;
    RETURN NULL;
END;
$$;
CREATE TRIGGER guard_epochs_revocations_inserted
    AFTER INSERT ON grant_revocations REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION guard_epochs_rows_written();
CREATE TRIGGER guard_epochs_revocations_updated
    AFTER UPDATE ON grant_revocations REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION guard_epochs_rows_written();
CREATE TRIGGER guard_epochs_floors_inserted
    AFTER INSERT ON listener_nonce_floors REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION guard_epochs_rows_written();
CREATE TRIGGER guard_epochs_floors_updated
    AFTER UPDATE ON listener_nonce_floors REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION guard_epochs_rows_written();

-- Room on each page for the per-second update of a pair's newest voucher to stay a heap-only tuple (no index entry).
ALTER TABLE vouchers SET (fillfactor = 70);
