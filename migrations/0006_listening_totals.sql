-- Listening totals per payee and per track, kept current by triggers on `sessions` (rows the relay writes when a
-- session opens, pauses and closes, never per voucher), so dashboards read a row instead of aggregating every play.
-- Seconds and amounts count once a row update carries them (at pause and close); a live session's running figures
-- come from its vouchers (see the API's session queries).
--
-- The triggers are per statement: one relay group commit opens or closes many sessions in one statement, and each
-- total is updated once per statement, in key order, so two relay writers committing at once take the totals' row
-- locks in the same order and cannot deadlock.

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

CREATE FUNCTION sessions_listening_opened() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH fresh AS (
        INSERT INTO payee_listeners (payee, listener)
        SELECT DISTINCT payee, listener FROM opened ORDER BY 1, 2
        ON CONFLICT DO NOTHING RETURNING payee
    ), f AS (SELECT payee, count(*) AS n FROM fresh GROUP BY payee),
    d AS (SELECT payee, count(*) AS streams, sum(seconds) AS seconds, sum(amount) AS amount FROM opened GROUP BY payee)
    INSERT INTO payee_listening AS t (payee, streams, seconds, amount, listeners)
    SELECT d.payee, d.streams, d.seconds, d.amount, coalesce(f.n, 0) FROM d LEFT JOIN f USING (payee) ORDER BY d.payee
    ON CONFLICT (payee) DO UPDATE
       SET streams = t.streams + EXCLUDED.streams, seconds = t.seconds + EXCLUDED.seconds,
           amount = t.amount + EXCLUDED.amount, listeners = t.listeners + EXCLUDED.listeners;

    WITH fresh AS (
        INSERT INTO track_listeners (track_id, listener)
        SELECT DISTINCT track_id, listener FROM opened ORDER BY 1, 2
        ON CONFLICT DO NOTHING RETURNING track_id
    ), f AS (SELECT track_id, count(*) AS n FROM fresh GROUP BY track_id),
    d AS (SELECT track_id, (array_agg(payee))[1] AS payee, count(*) AS streams, sum(seconds) AS seconds,
                 sum(amount) AS amount
          FROM opened GROUP BY track_id)
    INSERT INTO track_listening AS t (track_id, payee, streams, seconds, amount, listeners)
    SELECT d.track_id, d.payee, d.streams, d.seconds, d.amount, coalesce(f.n, 0)
    FROM d LEFT JOIN f USING (track_id) ORDER BY d.track_id
    ON CONFLICT (track_id) DO UPDATE
       SET streams = t.streams + EXCLUDED.streams, seconds = t.seconds + EXCLUDED.seconds,
           amount = t.amount + EXCLUDED.amount, listeners = t.listeners + EXCLUDED.listeners;

    INSERT INTO track_listening_daily AS t (day, track_id, streams, seconds, amount)
    SELECT (started_at AT TIME ZONE 'UTC')::date, track_id, count(*), sum(seconds), sum(amount)
    FROM opened GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (day, track_id) DO UPDATE
       SET streams = t.streams + EXCLUDED.streams, seconds = t.seconds + EXCLUDED.seconds,
           amount = t.amount + EXCLUDED.amount;
    RETURN NULL;
END;
$$;

CREATE FUNCTION sessions_listening_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO payee_listening AS t (payee, seconds, amount)
    SELECT n.payee, sum(n.seconds - o.seconds), sum(n.amount - o.amount)
    FROM updated n JOIN previous o USING (session_id)
    WHERE n.seconds <> o.seconds OR n.amount <> o.amount
    GROUP BY n.payee ORDER BY n.payee
    ON CONFLICT (payee) DO UPDATE SET seconds = t.seconds + EXCLUDED.seconds, amount = t.amount + EXCLUDED.amount;
    INSERT INTO track_listening AS t (track_id, payee, seconds, amount)
    SELECT n.track_id, (array_agg(n.payee))[1], sum(n.seconds - o.seconds), sum(n.amount - o.amount)
    FROM updated n JOIN previous o USING (session_id)
    WHERE n.seconds <> o.seconds OR n.amount <> o.amount
    GROUP BY n.track_id ORDER BY n.track_id
    ON CONFLICT (track_id) DO UPDATE SET seconds = t.seconds + EXCLUDED.seconds, amount = t.amount + EXCLUDED.amount;
    INSERT INTO track_listening_daily AS t (day, track_id, seconds, amount)
    SELECT (n.started_at AT TIME ZONE 'UTC')::date, n.track_id, sum(n.seconds - o.seconds), sum(n.amount - o.amount)
    FROM updated n JOIN previous o USING (session_id)
    WHERE n.seconds <> o.seconds OR n.amount <> o.amount
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (day, track_id) DO UPDATE SET seconds = t.seconds + EXCLUDED.seconds, amount = t.amount + EXCLUDED.amount;
    RETURN NULL;
END;
$$;

CREATE TRIGGER sessions_listening_opened
    AFTER INSERT ON sessions REFERENCING NEW TABLE AS opened
    FOR EACH STATEMENT EXECUTE FUNCTION sessions_listening_opened();
CREATE TRIGGER sessions_listening_updated
    AFTER UPDATE ON sessions REFERENCING OLD TABLE AS previous NEW TABLE AS updated
    FOR EACH STATEMENT EXECUTE FUNCTION sessions_listening_updated();

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
