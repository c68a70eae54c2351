-- Indexer bookkeeping for reorgs.

-- For every derived row the indexer changes in a block inside the unfinalised window, its value before that block
-- (NULL: the row did not exist). Rolling back to block A restores, per (entity, key), the earliest entry above A.
-- Entries below the window are pruned: blocks there are final.
CREATE TABLE indexer_undo (
    chain_id     BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    entity       TEXT NOT NULL,
    key          JSONB NOT NULL,
    previous     JSONB,
    PRIMARY KEY (chain_id, block_number, entity, key)
);

-- The derived tables are a pure function of the raw events; the indexer keeps them in its own memory per batch and
-- writes them with UNNEST upserts, so no triggers. The settled-pair and grant tables are read by the relay and the
-- keeper through these indexes.
CREATE INDEX settled_pairs_grant ON settled_pairs (chain_id, grant_id);
