-- Yellow Network (Nitrolite v1) app sessions: listeners who pay through a nitronode instead of the vault.
--
-- One app session per play: participants are the listener (weight 1), the relay operator (weight 1) and the artist
-- (weight 0), quorum 2. Every per-second operate update the relay accepts is stored here before it is acked, and
-- submitted to the node in version order afterwards (`submitted` trails `version` while the node is away).

-- A session row is paid either under a vault grant or under a Yellow app session; `grant_id` holds the grant id or
-- the app session id (both 32-byte hashes), `channel` says which.
ALTER TABLE sessions DROP CONSTRAINT sessions_grant_id_fkey;
ALTER TABLE sessions ADD COLUMN channel TEXT NOT NULL DEFAULT 'vault' CHECK (channel IN ('vault', 'yellow'));

CREATE TABLE yellow_app_sessions (
    app_session_id hash32 PRIMARY KEY,
    listener       address NOT NULL,
    payee          address NOT NULL,
    operator       address NOT NULL,
    asset          TEXT NOT NULL,
    -- The definition as created (application id, participants, quorum, nonce).
    definition     JSONB NOT NULL,
    -- Base units the listener deposited.
    deposit        amount NOT NULL,
    -- Newest stored (acked) version, and the payee's allocation at it in base units.
    version        BIGINT NOT NULL CHECK (version >= 2),
    paid           amount NOT NULL DEFAULT 0,
    -- Newest version the node accepted.
    submitted      BIGINT NOT NULL DEFAULT 1,
    -- open: updates flow; closing: the close is stored and waits for the node; closed: the node closed it;
    -- failed: the node refused a stored state for a reason retrying cannot fix (see last_error).
    status         TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closing', 'closed', 'failed')),
    last_error     TEXT,
    relay_id       TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (submitted <= version)
);
CREATE INDEX yellow_app_sessions_listener ON yellow_app_sessions (listener, created_at DESC);
-- The submitter's work list: sessions the node has not caught up with.
CREATE INDEX yellow_app_sessions_behind ON yellow_app_sessions (relay_id) WHERE submitted < version;

-- Signed states not yet known to the node, and the newest one (kept for its pre-signed close). `update` is the
-- AppStateUpdate exactly as signed; `listener_sig` the listener's 0xA1/0xA2 quorum signature of it; `close_sig` the
-- listener's signature of the close at version + 1 with the same allocations, so the relay can always end the
-- session and release the funds, even if the player vanishes.
CREATE TABLE yellow_states (
    app_session_id hash32 NOT NULL REFERENCES yellow_app_sessions (app_session_id),
    version        BIGINT NOT NULL,
    intent         SMALLINT NOT NULL CHECK (intent BETWEEN 0 AND 3),
    "update"       JSONB NOT NULL,
    listener_sig   BYTEA NOT NULL CHECK (octet_length(listener_sig) = 66),
    close_sig      BYTEA CHECK (octet_length(close_sig) = 66),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (app_session_id, version)
);
