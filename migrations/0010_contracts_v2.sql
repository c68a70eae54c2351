-- Contracts v2 (docs/DECISIONS.md, "The funding rule"): grant revocations and nonce floors, artist names as ERC-721
-- tokens of the registry. Raw event tables follow 0008's layout: keyed by (chain_id, block_number, log_index).

-- BeatStreamVault.GrantRevoked
CREATE TABLE vault_grant_revocations (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    listener     address NOT NULL,
    grant_id     hash32 NOT NULL,
    effective_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (chain_id, block_number, log_index)
);

-- BeatStreamVault.NonceFloorRaised
CREATE TABLE vault_nonce_floor_raises (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    listener     address NOT NULL,
    nonce_floor  NUMERIC(20, 0) NOT NULL,
    effective_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (chain_id, block_number, log_index)
);
-- The API works out when a floor revocation took effect from a listener's raises (a raise replaced while pending
-- never did). Raises are rare, so this costs the backfill next to nothing.
CREATE INDEX vault_nonce_floor_raises_listener ON vault_nonce_floor_raises (chain_id, listener);

-- BeatStreamRegistry.Transfer (ERC-721): a name token minted (from = 0) or moved. Approval and ApprovalForAll are
-- not stored: nothing mirrored depends on who else may manage an artist.
CREATE TABLE registry_name_transfers (
    chain_id BIGINT NOT NULL, block_number BIGINT NOT NULL, block_hash hash32 NOT NULL,
    block_time TIMESTAMPTZ NOT NULL, tx_hash hash32 NOT NULL, log_index INTEGER NOT NULL,
    node      hash32 NOT NULL,
    from_addr address NOT NULL,
    to_addr   address NOT NULL,
    PRIMARY KEY (chain_id, block_number, log_index)
);

-- Derived: a listener's revoked grants. The relay refuses a revoked grant's vouchers as soon as the row exists
-- (`grant_revoked`); the vault refuses them from effective_at, so vouchers acked before still settle.
CREATE TABLE grant_revocations (
    chain_id      BIGINT NOT NULL,
    listener      address NOT NULL,
    grant_id      hash32 NOT NULL,
    revoked_at    TIMESTAMPTZ NOT NULL,
    effective_at  TIMESTAMPTZ NOT NULL,
    updated_block BIGINT NOT NULL,
    PRIMARY KEY (chain_id, grant_id, listener)
);

-- Derived: a listener's nonce floor. Grants with a nonce below `floor` are refused by the relay at once; the vault
-- refuses those below `previous` until floor_from and below `floor` from then on.
CREATE TABLE listener_nonce_floors (
    chain_id      BIGINT NOT NULL,
    listener      address NOT NULL,
    floor         NUMERIC(20, 0) NOT NULL,
    previous      NUMERIC(20, 0) NOT NULL,
    floor_from    TIMESTAMPTZ NOT NULL,
    updated_block BIGINT NOT NULL,
    PRIMARY KEY (chain_id, listener)
);

COMMENT ON COLUMN artists.owner IS
    'Holder of the artist''s name token (BeatStreamRegistry ERC-721, token id = node), from registry_name_transfers. '
    'Since v2 the registry owns the ENS subname itself, so ENS ownership (ens_events) no longer sets it.';
