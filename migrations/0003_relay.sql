-- Stream relay bookkeeping.

-- A relay restarted under the same --relay-id closes the sessions its previous run left live (it died without
-- closing them); this finds them without scanning the session history.
CREATE INDEX sessions_relay_live ON sessions (relay_id) WHERE ended_at IS NULL;
