-- The keeper's lease, keyed like its advisory lock: one row per (chain id, vault) instead of one for the database.
--
-- Keepers of two vaults (or two chains) on one database each hold their own lock; with one lease row they bumped
-- each other's epoch, so each fenced the other's journal writes. Now each vault's keepers elect, renew and fence
-- on their own row.
--
-- The old row (id = 1) carries over to each (chain id, vault) the journal has settled for (its batches' grants):
-- the epoch goes on from where it was, so a vault's epochs keep increasing across the upgrade, and the leader's
-- backend pid stays, so a standby can still end a hung leader of the old version. A database whose journal is
-- empty drops it: nothing journaled depends on its epoch. A keeper of the old version still running after this
-- migration fails every journal write (its fence reads `id`, which is gone), so it can write nothing: upgrade the
-- keepers of a database together.

CREATE TABLE keeper_lease_per_vault (
    chain_id    BIGINT NOT NULL,
    vault       address NOT NULL,
    holder      TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    backend_pid INTEGER,
    PRIMARY KEY (chain_id, vault)
);

INSERT INTO keeper_lease_per_vault (chain_id, vault, holder, epoch, expires_at, backend_pid)
SELECT DISTINCT g.chain_id, g.vault, l.holder, l.epoch, l.expires_at, l.backend_pid
FROM keeper_lease l
CROSS JOIN keeper_batches b
JOIN keeper_batch_items i ON i.batch_id = b.id
JOIN grants g ON g.grant_id = i.grant_id AND g.chain_id = b.chain_id;

DROP TABLE keeper_lease;
ALTER TABLE keeper_lease_per_vault RENAME TO keeper_lease;
ALTER TABLE keeper_lease RENAME CONSTRAINT keeper_lease_per_vault_pkey TO keeper_lease_pkey;
