-- Indexes behind every filter and order the GraphQL API offers (see docs/API.md).

-- An artist's pending earnings: stored vouchers by payee.
CREATE INDEX vouchers_payee ON vouchers (payee);
-- settlements(where: {grantId}) newest first.
CREATE INDEX vault_settlements_grant_block ON vault_settlements (grant_id, block_number DESC, log_index DESC);
-- sessions newest first, all of them or only live ones; topTracks over a window.
CREATE INDEX sessions_started ON sessions (started_at DESC, session_id DESC);
CREATE INDEX sessions_live_started ON sessions (started_at DESC, session_id DESC) WHERE ended_at IS NULL;
-- artists(orderBy: NEWEST).
CREATE INDEX artists_registered ON artists (chain_id, registered_block DESC, name DESC);
-- An artist's tracks by id.
CREATE INDEX tracks_artist_id ON tracks (chain_id, artist_node, track_id);
-- keeperTransactions(status:) newest first.
CREATE INDEX keeper_batches_chain_status ON keeper_batches (chain_id, status, id DESC);
