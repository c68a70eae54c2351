-- BeatStream schema, version 1. The only place the schema is defined.
--
-- Conventions
--   * Addresses, hashes and ENS nodes are BYTEA (20 or 32 bytes); amounts are NUMERIC(78,0) token base units
--     (USDC has 6 decimals), wide enough for any uint256.
--   * Every table that mirrors the chain carries chain_id and the block it came from, so a reorg rollback is
--     `DELETE ... WHERE chain_id = $1 AND block_number > $ancestor` plus a recompute of the derived rows it touched.
--   * Raw event tables are keyed by (chain_id, block_hash, log_index): the same log re-delivered is a no-op and a
--     log of a different fork of the same height is a different row.
--   * Tables under "off-chain" are the relay's voucher book and the keeper's journal; they are not rebuilt from
--     the chain.

CREATE DOMAIN address AS BYTEA CHECK (octet_length(VALUE) = 20);
CREATE DOMAIN hash32 AS BYTEA CHECK (octet_length(VALUE) = 32);
CREATE DOMAIN amount AS NUMERIC(78, 0) CHECK (VALUE >= 0);

------------------------------------------------------------------------------------------------------------------
-- Chain cursor and the unfinalised window
------------------------------------------------------------------------------------------------------------------

-- The last block whose logs are fully written. Updated in the same transaction as those logs.
CREATE TABLE chain_cursor (
    chain_id     BIGINT PRIMARY KEY,
    block_number BIGINT NOT NULL,
    block_hash   hash32 NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Number, hash and parent of recent blocks, to find the common ancestor after a reorg. Pruned below the window.
CREATE TABLE blocks (
    chain_id    BIGINT NOT NULL,
    number      BIGINT NOT NULL,
    hash        hash32 NOT NULL,
    parent_hash hash32 NOT NULL,
    timestamp   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (chain_id, number)
);

------------------------------------------------------------------------------------------------------------------
-- Raw events. Common columns: chain_id, block_number, block_hash, block_time, tx_hash, log_index.
------------------------------------------------------------------------------------------------------------------

-- BeatStreamVault.Deposited
CREATE TABLE vault_deposits (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    listener address NOT NULL,
    sender   address NOT NULL,
    amount   amount NOT NULL,
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX vault_deposits_block ON vault_deposits (chain_id, block_number);
CREATE INDEX vault_deposits_listener ON vault_deposits (listener, block_number DESC, log_index DESC);

-- BeatStreamVault.WithdrawalRequested
CREATE TABLE vault_withdrawal_requests (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    listener address NOT NULL,
    amount   amount NOT NULL,
    thawing  amount NOT NULL,
    thaw_end TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX vault_withdrawal_requests_block ON vault_withdrawal_requests (chain_id, block_number);
CREATE INDEX vault_withdrawal_requests_listener ON vault_withdrawal_requests (listener, block_number DESC);

-- BeatStreamVault.WithdrawalCancelled
CREATE TABLE vault_withdrawal_cancellations (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    listener address NOT NULL,
    amount   amount NOT NULL,
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX vault_withdrawal_cancellations_block ON vault_withdrawal_cancellations (chain_id, block_number);

-- BeatStreamVault.Withdrawn
CREATE TABLE vault_withdrawals (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    listener  address NOT NULL,
    recipient address NOT NULL,
    amount    amount NOT NULL,
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX vault_withdrawals_block ON vault_withdrawals (chain_id, block_number);
CREATE INDEX vault_withdrawals_listener ON vault_withdrawals (listener, block_number DESC);

-- BeatStreamVault.GrantRegistered: a grant's first settlement.
CREATE TABLE vault_grant_registrations (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    grant_id    hash32 NOT NULL,
    listener    address NOT NULL,
    session_key address NOT NULL,
    cap         amount NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    nonce       NUMERIC(20, 0) NOT NULL,
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX vault_grant_registrations_block ON vault_grant_registrations (chain_id, block_number);
CREATE INDEX vault_grant_registrations_grant ON vault_grant_registrations (grant_id);

-- BeatStreamVault.Settled: the high-volume table.
CREATE TABLE vault_settlements (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    grant_id   hash32 NOT NULL,
    listener   address NOT NULL,
    payee      address NOT NULL,
    amount     amount NOT NULL,
    cumulative amount NOT NULL,
    fee        amount NOT NULL,
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX vault_settlements_block ON vault_settlements (chain_id, block_number, log_index);
CREATE INDEX vault_settlements_payee ON vault_settlements (payee, block_number DESC, log_index DESC);
CREATE INDEX vault_settlements_listener ON vault_settlements (listener, block_number DESC, log_index DESC);
CREATE INDEX vault_settlements_grant ON vault_settlements (grant_id, payee);

-- BeatStreamVault.SettlementSkipped. reason is the SkipReason enum ordinal.
CREATE TABLE vault_settlement_skips (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    grant_id   hash32 NOT NULL,
    payee      address NOT NULL,
    cumulative NUMERIC(78, 0) NOT NULL,
    reason     SMALLINT NOT NULL,
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX vault_settlement_skips_block ON vault_settlement_skips (chain_id, block_number);
CREATE INDEX vault_settlement_skips_grant ON vault_settlement_skips (grant_id, payee);

-- BeatStreamVault.EarningsWithdrawn
CREATE TABLE vault_earnings_withdrawals (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    payee     address NOT NULL,
    recipient address NOT NULL,
    amount    amount NOT NULL,
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX vault_earnings_withdrawals_block ON vault_earnings_withdrawals (chain_id, block_number);
CREATE INDEX vault_earnings_withdrawals_payee ON vault_earnings_withdrawals (payee, block_number DESC);

-- BeatStreamVault.FeeUpdated / TreasuryUpdated / FeesCollected / OwnershipTransferred(Started): rare, so one
-- table with the decoded fields as JSON.
CREATE TABLE vault_admin_events (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data JSONB NOT NULL,
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX vault_admin_events_block ON vault_admin_events (chain_id, block_number);

-- BeatStreamRegistry.ArtistRegistered
CREATE TABLE registry_artist_registrations (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    node            hash32 NOT NULL,
    owner           address NOT NULL,
    label           TEXT NOT NULL,
    rate_per_second amount NOT NULL,
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX registry_artist_registrations_block ON registry_artist_registrations (chain_id, block_number);

-- BeatStreamRegistry.ArtistRateChanged
CREATE TABLE registry_rate_changes (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    node            hash32 NOT NULL,
    rate_per_second amount NOT NULL,
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX registry_rate_changes_block ON registry_rate_changes (chain_id, block_number);

-- BeatStreamRegistry.TrackPublished / TrackUpdated / TrackUnpublished (kind says which; details NULL for the last).
CREATE TABLE registry_track_events (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('published', 'updated', 'unpublished')),
    track_id        NUMERIC(78, 0) NOT NULL,
    artist_node     hash32 NOT NULL,
    title           TEXT,
    duration        INTEGER,
    rate_per_second amount,
    content_hash    hash32,
    metadata_uri    TEXT,
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX registry_track_events_block ON registry_track_events (chain_id, block_number);
CREATE INDEX registry_track_events_track ON registry_track_events (track_id, block_number, log_index);

-- Resolver AddrChanged / TextChanged of the registry (as resolver of the beatstream.eth subnames).
CREATE TABLE registry_record_changes (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    node  hash32 NOT NULL,
    kind  TEXT NOT NULL CHECK (kind IN ('addr', 'text')),
    key   TEXT,
    value TEXT,
    addr  address,
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX registry_record_changes_block ON registry_record_changes (chain_id, block_number);
CREATE INDEX registry_record_changes_node ON registry_record_changes (node, block_number, log_index);

-- ENS registry NewOwner / Transfer / NewResolver / NewTTL for the beatstream.eth subtree.
CREATE TABLE ens_events (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    kind     TEXT NOT NULL CHECK (kind IN ('new_owner', 'transfer', 'new_resolver', 'new_ttl')),
    node     hash32 NOT NULL,
    label    hash32,
    owner    address,
    resolver address,
    ttl      NUMERIC(20, 0),
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX ens_events_block ON ens_events (chain_id, block_number);
CREATE INDEX ens_events_node ON ens_events (node, block_number, log_index);

------------------------------------------------------------------------------------------------------------------
-- Derived state: a pure function of the raw events above, kept current by the indexer in the same transaction.
------------------------------------------------------------------------------------------------------------------

-- A listener's vault account as the contract has it, plus running totals for dashboards.
CREATE TABLE listener_accounts (
    chain_id        BIGINT NOT NULL,
    listener        address NOT NULL,
    available       amount NOT NULL DEFAULT 0,
    thawing         amount NOT NULL DEFAULT 0,
    thaw_end        TIMESTAMPTZ,
    deposited_total amount NOT NULL DEFAULT 0,
    spent_total     amount NOT NULL DEFAULT 0,
    withdrawn_total amount NOT NULL DEFAULT 0,
    updated_block   BIGINT NOT NULL,
    PRIMARY KEY (chain_id, listener)
);

-- A payee's earnings: withdrawable = earned_total - withdrawn_total.
CREATE TABLE payee_earnings (
    chain_id        BIGINT NOT NULL,
    payee           address NOT NULL,
    earned_total    amount NOT NULL DEFAULT 0,
    fees_total      amount NOT NULL DEFAULT 0,
    withdrawn_total amount NOT NULL DEFAULT 0,
    withdrawable    amount NOT NULL DEFAULT 0,
    settlements     BIGINT NOT NULL DEFAULT 0,
    updated_block   BIGINT NOT NULL,
    PRIMARY KEY (chain_id, payee)
);

-- Registered grants and what they have spent on-chain.
CREATE TABLE grant_spend (
    chain_id      BIGINT NOT NULL,
    grant_id      hash32 NOT NULL,
    listener      address NOT NULL,
    session_key   address NOT NULL,
    cap           amount NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    spent         amount NOT NULL DEFAULT 0,
    updated_block BIGINT NOT NULL,
    PRIMARY KEY (chain_id, grant_id)
);
CREATE INDEX grant_spend_listener ON grant_spend (listener);

-- The on-chain settled cumulative per (grant, payee): what the keeper and the relay compare vouchers against.
CREATE TABLE settled_pairs (
    chain_id      BIGINT NOT NULL,
    grant_id      hash32 NOT NULL,
    payee         address NOT NULL,
    listener      address NOT NULL,
    cumulative    amount NOT NULL,
    updated_block BIGINT NOT NULL,
    PRIMARY KEY (chain_id, grant_id, payee)
);
CREATE INDEX settled_pairs_listener ON settled_pairs (listener);

-- Artists: the registry's view plus ENS ownership and resolver records.
CREATE TABLE artists (
    chain_id        BIGINT NOT NULL,
    node            hash32 NOT NULL,
    label           TEXT NOT NULL,
    name            TEXT NOT NULL,
    owner           address NOT NULL,
    addr            address,
    rate_per_second amount NOT NULL,
    registered_at   TIMESTAMPTZ NOT NULL,
    registered_block BIGINT NOT NULL,
    updated_block   BIGINT NOT NULL,
    PRIMARY KEY (chain_id, node)
);
CREATE UNIQUE INDEX artists_name ON artists (chain_id, name);
CREATE INDEX artists_addr ON artists (addr);
CREATE INDEX artists_owner ON artists (owner);

CREATE TABLE artist_texts (
    chain_id      BIGINT NOT NULL,
    node          hash32 NOT NULL,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    updated_block BIGINT NOT NULL,
    PRIMARY KEY (chain_id, node, key)
);

CREATE TABLE tracks (
    chain_id        BIGINT NOT NULL,
    track_id        NUMERIC(78, 0) NOT NULL,
    artist_node     hash32 NOT NULL,
    title           TEXT NOT NULL,
    duration        INTEGER NOT NULL,
    rate_per_second amount NOT NULL,
    content_hash    hash32 NOT NULL,
    metadata_uri    TEXT NOT NULL,
    published       BOOLEAN NOT NULL,
    published_at    TIMESTAMPTZ NOT NULL,
    updated_block   BIGINT NOT NULL,
    PRIMARY KEY (chain_id, track_id)
);
CREATE INDEX tracks_artist ON tracks (chain_id, artist_node);

-- Settlement volume per payee per hour; daily figures are sums of these.
CREATE TABLE settlement_hourly (
    chain_id    BIGINT NOT NULL,
    hour        TIMESTAMPTZ NOT NULL,
    payee       address NOT NULL,
    amount      amount NOT NULL DEFAULT 0,
    fees        amount NOT NULL DEFAULT 0,
    settlements BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (chain_id, hour, payee)
);
CREATE INDEX settlement_hourly_payee ON settlement_hourly (payee, hour);

------------------------------------------------------------------------------------------------------------------
-- Off-chain: the relay's voucher book
------------------------------------------------------------------------------------------------------------------

-- Grants presented to a relay in `hello`, with the listener's signature (the keeper needs it to settle).
CREATE TABLE grants (
    grant_id    hash32 PRIMARY KEY,
    chain_id    BIGINT NOT NULL,
    vault       address NOT NULL,
    listener    address NOT NULL,
    session_key address NOT NULL,
    cap         amount NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    nonce       NUMERIC(20, 0) NOT NULL,
    signature   BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX grants_listener ON grants (listener);

-- The newest voucher per (grant, payee): only it matters, vouchers being cumulative. Written by group commit
-- before the relay acks; `cumulative` only ever grows (enforced in the upsert).
CREATE TABLE vouchers (
    grant_id   hash32 NOT NULL REFERENCES grants (grant_id),
    payee      address NOT NULL,
    listener   address NOT NULL,
    cumulative amount NOT NULL,
    signature  BYTEA NOT NULL CHECK (octet_length(signature) = 65),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (grant_id, payee)
);
CREATE INDEX vouchers_listener ON vouchers (listener);

-- One play of one track: live while ended_at is NULL.
CREATE TABLE sessions (
    session_id      UUID PRIMARY KEY,
    grant_id        hash32 NOT NULL REFERENCES grants (grant_id),
    listener        address NOT NULL,
    payee           address NOT NULL,
    artist_node     hash32,
    track_id        NUMERIC(78, 0) NOT NULL,
    rate_per_second amount NOT NULL,
    base_cumulative amount NOT NULL,
    seconds         INTEGER NOT NULL DEFAULT 0,
    amount          amount NOT NULL DEFAULT 0,
    status          TEXT NOT NULL CHECK (status IN ('live', 'paused', 'closed')),
    close_reason    TEXT,
    relay_id        TEXT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at        TIMESTAMPTZ
);
CREATE INDEX sessions_listener ON sessions (listener, started_at DESC);
CREATE INDEX sessions_payee ON sessions (payee, started_at DESC);
CREATE INDEX sessions_track ON sessions (track_id, started_at DESC);
CREATE INDEX sessions_live ON sessions (grant_id, payee) WHERE ended_at IS NULL;

------------------------------------------------------------------------------------------------------------------
-- Off-chain: the keeper's journal
------------------------------------------------------------------------------------------------------------------

-- The single-active-keeper lease: the holder renews it; a batch claim checks the epoch it holds.
CREATE TABLE keeper_lease (
    id         SMALLINT PRIMARY KEY CHECK (id = 1),
    holder     TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- A settlement batch: one nonce of the keeper account, written before anything is broadcast.
CREATE TABLE keeper_batches (
    id              BIGSERIAL PRIMARY KEY,
    chain_id        BIGINT NOT NULL,
    sender          address NOT NULL,
    nonce           BIGINT NOT NULL,
    epoch           BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'broadcast', 'confirmed', 'reorged', 'failed', 'cancelled')),
    gas_limit       BIGINT NOT NULL,
    confirmed_hash  hash32,
    confirmed_block BIGINT,
    gas_used        BIGINT,
    error           TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX keeper_batches_open_nonce ON keeper_batches (chain_id, sender, nonce)
    WHERE status IN ('pending', 'broadcast');
CREATE INDEX keeper_batches_status ON keeper_batches (status);

-- The vouchers a batch settles.
CREATE TABLE keeper_batch_items (
    batch_id   BIGINT NOT NULL REFERENCES keeper_batches (id),
    grant_id   hash32 NOT NULL,
    payee      address NOT NULL,
    cumulative amount NOT NULL,
    PRIMARY KEY (batch_id, grant_id, payee)
);
CREATE INDEX keeper_batch_items_pair ON keeper_batch_items (grant_id, payee);

-- Every signed transaction of a batch (first send and each fee bump), stored before it is broadcast.
CREATE TABLE keeper_attempts (
    hash                     hash32 PRIMARY KEY,
    batch_id                 BIGINT NOT NULL REFERENCES keeper_batches (id),
    attempt                  INTEGER NOT NULL,
    max_fee_per_gas          NUMERIC(78, 0) NOT NULL,
    max_priority_fee_per_gas NUMERIC(78, 0) NOT NULL,
    raw                      BYTEA NOT NULL,
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    broadcast_at             TIMESTAMPTZ,
    UNIQUE (batch_id, attempt)
);
