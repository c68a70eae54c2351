-- The keeper's journal of tips (issue 20), beside `keeper_batch_items` (its vouchers).
--
-- A batch that settles tips (`settleBatchWithTips`) journals each tip here in the same transaction as the batch, its
-- vouchers and its first signed transaction, before anything is broadcast: a tip in an open batch is not claimed
-- again, and the next step follows the journaled transaction to its receipt. `outcome` is written from the receipt
-- (`settled`, `skipped:<reason>`, `not_reached` after `TipsCutShort`, `unmatched`), like an item's.
CREATE TABLE keeper_batch_tips (
    batch_id  BIGINT NOT NULL REFERENCES keeper_batches (id),
    grant_id  hash32 NOT NULL,
    tip_id    NUMERIC(78, 0) NOT NULL,
    payee     address NOT NULL,
    listener  address NOT NULL,
    amount    amount NOT NULL,
    -- When the relay stored the tip.
    tipped_at TIMESTAMPTZ NOT NULL,
    outcome   TEXT,
    PRIMARY KEY (batch_id, grant_id, tip_id)
);
CREATE INDEX keeper_batch_tips_tip ON keeper_batch_tips (grant_id, tip_id);

-- Tips the last simulation said the vault would skip: not tried again before `retry_at` (a year for a reason no
-- retry can change: a bad signature, a message too long, a tip already settled, a revoked grant).
CREATE TABLE keeper_tip_holds (
    grant_id   hash32 NOT NULL,
    tip_id     NUMERIC(78, 0) NOT NULL,
    reason     TEXT NOT NULL,
    retry_at   TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (grant_id, tip_id)
);
