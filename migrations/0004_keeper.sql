-- The keeper's journal, as the keeper uses it.
--
-- A batch moves pending (signed and journaled, maybe not yet broadcast) -> broadcast -> mined (receipt seen, not yet
-- `confirmations` deep) -> confirmed. A mined batch whose receipt disappears (reorg) goes back to broadcast and its
-- signed transaction is sent again. A batch whose nonce was used by another transaction (ours or not) ends
-- cancelled and its vouchers become claimable again; `failed` is a settlement that reverted.

ALTER TABLE keeper_batches DROP CONSTRAINT keeper_batches_status_check;
ALTER TABLE keeper_batches ADD CONSTRAINT keeper_batches_status_check
    CHECK (status IN ('pending', 'broadcast', 'mined', 'confirmed', 'cancelled', 'failed'));

DROP INDEX keeper_batches_open_nonce;
CREATE UNIQUE INDEX keeper_batches_open_nonce ON keeper_batches (chain_id, sender, nonce)
    WHERE status IN ('pending', 'broadcast', 'mined');

ALTER TABLE keeper_batches
    -- `settle`: a settleBatch; `noop`: a self-transfer filling a nonce gap.
    ADD COLUMN kind          TEXT NOT NULL DEFAULT 'settle' CHECK (kind IN ('settle', 'noop')),
    ADD COLUMN keeper_id     TEXT NOT NULL DEFAULT '',
    ADD COLUMN urgent        BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN settled_count INTEGER,
    ADD COLUMN reorgs        INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN mined_at      TIMESTAMPTZ,
    ADD COLUMN confirmed_at  TIMESTAMPTZ;

ALTER TABLE keeper_batch_items
    ADD COLUMN listener   address,
    -- What the item was expected to pay when claimed (cumulative minus what was settled).
    ADD COLUMN value      amount,
    -- When the relay stored the voucher: the start of the voucher-to-settlement latency.
    ADD COLUMN voucher_at TIMESTAMPTZ,
    -- `settled` or `skipped:<reason>` once the transaction is mined.
    ADD COLUMN outcome    TEXT;

ALTER TABLE keeper_attempts
    -- `settle`: the batch's transaction (first send or fee bump); `cancel`: a self-transfer replacing it.
    ADD COLUMN kind      TEXT NOT NULL DEFAULT 'settle' CHECK (kind IN ('settle', 'cancel')),
    ADD COLUMN gas_limit BIGINT;

-- The lease also names the leader's backend, so a standby can end a leader that holds the lock but stopped renewing.
ALTER TABLE keeper_lease ADD COLUMN backend_pid INTEGER;

-- Vouchers the last simulation said would be skipped (listener out of funds, bad signature, ...): not retried before
-- `retry_at`, and a newer cumulative for the pair lifts the hold at once.
CREATE TABLE keeper_holds (
    grant_id   hash32 NOT NULL,
    payee      address NOT NULL,
    cumulative amount NOT NULL,
    reason     TEXT NOT NULL,
    retry_at   TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (grant_id, payee)
);
