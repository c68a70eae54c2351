-- The studio's sign-in (EIP-4361, docs/STUDIO.md): one-time nonces and bearer sessions. The studio is their only
-- writer and reader. Rows past their expiry are deleted lazily by the studio (expired nonces when it issues one,
-- expired sessions when it opens one), so both tables stay about as large as what is live.

-- A nonce handed out by `POST /studio/siwe/nonce`, until a sign-in uses it (the row is deleted in the statement that
-- checks it) or it expires.
CREATE TABLE studio_nonces (
    nonce      TEXT PRIMARY KEY CHECK (nonce ~ '^[A-Za-z0-9]{16,64}$'),
    -- The chain whose sign-ins may use it: a database may serve several deployments.
    chain_id   BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX studio_nonces_expires ON studio_nonces (expires_at);

-- A signed-in address. The bearer token itself is never stored: only its SHA-256, so a copy of the table opens no
-- session.
CREATE TABLE studio_sessions (
    token_sha256 hash32 PRIMARY KEY,
    chain_id     BIGINT NOT NULL,
    address      address NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX studio_sessions_expires ON studio_sessions (expires_at);
