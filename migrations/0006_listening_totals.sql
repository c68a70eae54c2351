-- Listening totals per payee and per track, kept current by triggers on `sessions` (rows the relay writes when a
-- session opens, pauses and closes, never per voucher), so dashboards read a row instead of aggregating every play.
-- Seconds and amounts count a session once it has a row update carrying them (at pause and close); live sessions'
-- running figures come from their vouchers (see the API's session queries).

CREATE TABLE payee_listening (
    payee     address PRIMARY KEY,
    streams   BIGINT NOT NULL DEFAULT 0,
    seconds   BIGINT NOT NULL DEFAULT 0,
    amount    amount NOT NULL DEFAULT 0,
    listeners BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE track_listening (
    track_id  NUMERIC(78, 0) PRIMARY KEY,
    payee     address NOT NULL,
    streams   BIGINT NOT NULL DEFAULT 0,
    seconds   BIGINT NOT NULL DEFAULT 0,
    amount    amount NOT NULL DEFAULT 0,
    listeners BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX track_listening_payee ON track_listening (payee, amount DESC);

-- Per track per UTC day, for rankings over a window.
CREATE TABLE track_listening_daily (
    day      DATE NOT NULL,
    track_id NUMERIC(78, 0) NOT NULL,
    streams  BIGINT NOT NULL DEFAULT 0,
    seconds  BIGINT NOT NULL DEFAULT 0,
    amount   amount NOT NULL DEFAULT 0,
    PRIMARY KEY (day, track_id)
);

-- Who has listened to whom: the distinct-listener counts above grow when a pair is first seen.
CREATE TABLE payee_listeners (
    payee    address NOT NULL,
    listener address NOT NULL,
    PRIMARY KEY (payee, listener)
);
CREATE TABLE track_listeners (
    track_id NUMERIC(78, 0) NOT NULL,
    listener address NOT NULL,
    PRIMARY KEY (track_id, listener)
);

CREATE FUNCTION sessions_listening_totals() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d_streams  BIGINT := 0;
    d_seconds  BIGINT;
    d_amount   NUMERIC;
    new_payee  BIGINT := 0;
    new_track  BIGINT := 0;
    d_day      DATE := (NEW.started_at AT TIME ZONE 'UTC')::date;
BEGIN
    IF TG_OP = 'INSERT' THEN
        d_streams := 1;
        d_seconds := NEW.seconds;
        d_amount := NEW.amount;
        INSERT INTO payee_listeners VALUES (NEW.payee, NEW.listener) ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS new_payee = ROW_COUNT;
        INSERT INTO track_listeners VALUES (NEW.track_id, NEW.listener) ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS new_track = ROW_COUNT;
    ELSE
        d_seconds := NEW.seconds - OLD.seconds;
        d_amount := NEW.amount - OLD.amount;
        IF d_seconds = 0 AND d_amount = 0 THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO payee_listening AS t (payee, streams, seconds, amount, listeners)
    VALUES (NEW.payee, d_streams, d_seconds, d_amount, new_payee)
    ON CONFLICT (payee) DO UPDATE
       SET streams = t.streams + d_streams, seconds = t.seconds + d_seconds, amount = t.amount + d_amount,
           listeners = t.listeners + new_payee;
    INSERT INTO track_listening AS t (track_id, payee, streams, seconds, amount, listeners)
    VALUES (NEW.track_id, NEW.payee, d_streams, d_seconds, d_amount, new_track)
    ON CONFLICT (track_id) DO UPDATE
       SET streams = t.streams + d_streams, seconds = t.seconds + d_seconds, amount = t.amount + d_amount,
           listeners = t.listeners + new_track;
    INSERT INTO track_listening_daily AS t (day, track_id, streams, seconds, amount)
    VALUES (d_day, NEW.track_id, d_streams, d_seconds, d_amount)
    ON CONFLICT (day, track_id) DO UPDATE
       SET streams = t.streams + d_streams, seconds = t.seconds + d_seconds, amount = t.amount + d_amount;
    RETURN NULL;
END;
$$;

CREATE TRIGGER sessions_listening_totals
    AFTER INSERT OR UPDATE OF seconds, amount ON sessions
    FOR EACH ROW EXECUTE FUNCTION sessions_listening_totals();

-- Sessions written before this migration.
INSERT INTO payee_listeners SELECT DISTINCT payee, listener FROM sessions;
INSERT INTO track_listeners SELECT DISTINCT track_id, listener FROM sessions;
INSERT INTO payee_listening (payee, streams, seconds, amount, listeners)
SELECT s.payee, count(*), sum(s.seconds), sum(s.amount), (SELECT count(*) FROM payee_listeners l WHERE l.payee = s.payee)
FROM sessions s GROUP BY s.payee;
INSERT INTO track_listening (track_id, payee, streams, seconds, amount, listeners)
SELECT s.track_id, (array_agg(s.payee))[1], count(*), sum(s.seconds), sum(s.amount),
       (SELECT count(*) FROM track_listeners l WHERE l.track_id = s.track_id)
FROM sessions s GROUP BY s.track_id;
INSERT INTO track_listening_daily (day, track_id, streams, seconds, amount)
SELECT (started_at AT TIME ZONE 'UTC')::date, track_id, count(*), sum(seconds), sum(amount)
FROM sessions GROUP BY 1, 2;
