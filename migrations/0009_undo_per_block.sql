-- The undo log holds one row per (chain, block, entity): every key the block changed in that entity, with the row
-- as it was before the block, packed as the indexer's JSON `[[key, previous], ...]` (previous is null where the row
-- did not exist). A dense block (a thousand settlements) wrote about 4,500 rows into the log before, each with its
-- own tuple and index entry; now five. The log is written for every block inside the unfinalised window and read
-- only by a rollback, which reads whole blocks anyway. Measured in docs/BENCHMARKS.md ("Indexer backfill").
CREATE TABLE indexer_undo_blocks (
    chain_id     BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    entity       TEXT   NOT NULL,
    entries      BYTEA  NOT NULL,
    PRIMARY KEY (chain_id, block_number, entity)
);
-- Stored out of line uncompressed: compressing a block's entries cost more than writing them, and they are read
-- back only on a reorg.
ALTER TABLE indexer_undo_blocks ALTER COLUMN entries SET STORAGE EXTERNAL;

-- Entries already logged keep their meaning: one key's entry per block, before that block.
INSERT INTO indexer_undo_blocks (chain_id, block_number, entity, entries)
SELECT chain_id, block_number, entity,
       convert_to(json_agg(json_build_array(convert_from(key, 'UTF8')::json,
                                            convert_from(previous, 'UTF8')::json))::text, 'UTF8')
FROM indexer_undo
GROUP BY chain_id, block_number, entity;

DROP TABLE indexer_undo;
ALTER TABLE indexer_undo_blocks RENAME TO indexer_undo;
ALTER INDEX indexer_undo_blocks_pkey RENAME TO indexer_undo_pkey;
