-- Uploaded audio (docs/PROTOCOL.md "Audio content", docs/STUDIO.md): one row per uploaded track, keyed by its root,
-- the value its on-chain `contentHash` takes when the artist publishes it. The studio writes a row once every chunk
-- is stored; the relay reads it at `play` to release chunk keys; the studio serves the manifest from it.
CREATE TABLE audio_tracks (
    chain_id      BIGINT NOT NULL,
    -- keccak256(abi.encode(uint32 chunkCount, uint64 durationMs, bytes32 chunksHash)).
    root          hash32 NOT NULL,
    -- The artist name it was uploaded under (namehash of <label>.beatstream.eth) and the signed-in address.
    artist_node   hash32 NOT NULL,
    uploaded_by   address NOT NULL,
    chunk_count   INTEGER NOT NULL CHECK (chunk_count > 0),
    duration_ms   BIGINT NOT NULL CHECK (duration_ms > 0),
    -- The per-track secret, sealed under the node's audio key (never stored or logged in the clear).
    sealed_secret BYTEA NOT NULL,
    -- The manifest JSON players fetch (chunk hashes, sample rate, channels, MIME type).
    manifest      JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, root)
);
CREATE INDEX audio_tracks_artist ON audio_tracks (chain_id, artist_node);
