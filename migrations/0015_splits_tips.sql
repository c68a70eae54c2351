-- Contracts v3 (issue 20, docs/PROTOCOL.md "Splits and tips"): revenue splits and tips.
-- Raw event tables follow 0008's layout (keyed by (chain_id, block_number, log_index)); derived tables carry
-- updated_block for the rollback. `tips` at the end is the relay's (off-chain), like `vouchers`.

-- BeatStreamVault.SplitSet: recipients and shares in SplitSet order (recipient i is paid parts[i]).
CREATE TABLE vault_split_sets (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    node       hash32 NOT NULL,
    track_id   NUMERIC(78, 0) NOT NULL,
    split      address NOT NULL,
    version    BIGINT NOT NULL,
    recipients BYTEA[] NOT NULL,
    shares     INTEGER[] NOT NULL,
    PRIMARY KEY (chain_id, block_number, log_index)
);
CREATE INDEX vault_split_sets_node ON vault_split_sets (chain_id, node, track_id);

-- BeatStreamVault.SplitCleared
CREATE TABLE vault_split_clears (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    node     hash32 NOT NULL,
    track_id NUMERIC(78, 0) NOT NULL,
    split    address NOT NULL,
    version  BIGINT NOT NULL,
    PRIMARY KEY (chain_id, block_number, log_index)
);

-- BeatStreamVault.SplitPaid: emitted right after the Settled or Tipped it pays out; `source_log_index` is that
-- event's log index (in the same transaction), `source` is 'settled' or 'tipped'; or 'split_set' when setSplit
-- passes on what the split payee was paid before the split existed (a settler naming a split payee early).
CREATE TABLE vault_split_payments (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    split            address NOT NULL,
    amount           amount NOT NULL,
    parts            NUMERIC(78, 0)[] NOT NULL,
    source           TEXT NOT NULL CHECK (source IN ('settled', 'tipped', 'split_set')),
    source_log_index INTEGER NOT NULL,
    PRIMARY KEY (chain_id, block_number, log_index)
);
CREATE INDEX vault_split_payments_split ON vault_split_payments (chain_id, split, block_number DESC);

-- BeatStreamVault.Tipped. `message` is the bytes as signed (UTF-8 text; never interpreted or altered).
CREATE TABLE vault_tips (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    grant_id hash32 NOT NULL,
    listener address NOT NULL,
    payee    address NOT NULL,
    tip_id   NUMERIC(78, 0) NOT NULL,
    amount   amount NOT NULL,
    fee      amount NOT NULL,
    message  BYTEA NOT NULL,
    PRIMARY KEY (chain_id, block_number, log_index)
);
-- The relay's guard and the keeper ask "is this tip settled" by (grant, tip id).
CREATE UNIQUE INDEX vault_tips_tip ON vault_tips (chain_id, grant_id, tip_id);
CREATE INDEX vault_tips_payee ON vault_tips (chain_id, payee, block_number DESC, log_index DESC);
CREATE INDEX vault_tips_listener ON vault_tips (chain_id, listener);

-- BeatStreamVault.TipSkipped. reason is the SkipReason ordinal (9 TipAlreadySettled, 10 MessageTooLong, ...).
CREATE TABLE vault_tip_skips (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    grant_id hash32 NOT NULL,
    payee    address NOT NULL,
    tip_id   NUMERIC(78, 0) NOT NULL,
    reason   SMALLINT NOT NULL,
    PRIMARY KEY (chain_id, block_number, log_index)
);
CREATE INDEX vault_tip_skips_tip ON vault_tip_skips (chain_id, grant_id, tip_id);

-- Derived: every split version ever set. `split` is its payee address (splitPayee(node, trackId, version));
-- cleared_block is set when SplitCleared named this version.
CREATE TABLE splits (
    chain_id      BIGINT NOT NULL,
    split         address NOT NULL,
    node          hash32 NOT NULL,
    track_id      NUMERIC(78, 0) NOT NULL,
    version       BIGINT NOT NULL,
    recipients    BYTEA[] NOT NULL,
    shares        INTEGER[] NOT NULL,
    set_at        TIMESTAMPTZ NOT NULL,
    set_block     BIGINT NOT NULL,
    cleared_at    TIMESTAMPTZ,
    cleared_block BIGINT,
    updated_block BIGINT NOT NULL,
    PRIMARY KEY (chain_id, split)
);
CREATE UNIQUE INDEX splits_version ON splits (chain_id, node, track_id, version);

-- Derived: the split version in force per (artist, track) (track_id 0: the artist's own split); no row when none.
-- The relay's payee rule (the vault's playPayee): the track's row, else the artist's (track 0) row, else addr.
CREATE TABLE split_in_force (
    chain_id      BIGINT NOT NULL,
    node          hash32 NOT NULL,
    track_id      NUMERIC(78, 0) NOT NULL,
    split         address NOT NULL,
    updated_block BIGINT NOT NULL,
    PRIMARY KEY (chain_id, node, track_id)
);

-- Derived: what each recipient of each split version was paid (from SplitPaid parts), settlements and tips.
CREATE TABLE split_earnings (
    chain_id      BIGINT NOT NULL,
    split         address NOT NULL,
    recipient     address NOT NULL,
    earned        amount NOT NULL DEFAULT 0,
    from_tips     amount NOT NULL DEFAULT 0,
    payments      BIGINT NOT NULL DEFAULT 0,
    updated_block BIGINT NOT NULL,
    PRIMARY KEY (chain_id, split, recipient)
);
CREATE INDEX split_earnings_recipient ON split_earnings (chain_id, recipient);
-- The API's supporters of an artist: what each listener settled to each of the artist's payees.
CREATE INDEX settled_pairs_payee ON settled_pairs (chain_id, payee);

------------------------------------------------------------------------------------------------------------------
-- Off-chain: tips the relay acked. Written before the relay acks; the keeper settles each with
-- settleBatchWithTips. A tip is settled once vault_tips has its (grant_id, tip_id).
------------------------------------------------------------------------------------------------------------------
CREATE TABLE tips (
    grant_id   hash32 NOT NULL REFERENCES grants (grant_id),
    tip_id     NUMERIC(78, 0) NOT NULL,
    listener   address NOT NULL,
    payee      address NOT NULL,
    amount     amount NOT NULL CHECK (amount > 0),
    message    BYTEA NOT NULL CHECK (octet_length(message) <= 280),
    signature  BYTEA NOT NULL CHECK (octet_length(signature) = 65),
    relay_id   TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (grant_id, tip_id)
);
CREATE INDEX tips_listener ON tips (listener);
CREATE INDEX tips_payee ON tips (payee, created_at DESC);
