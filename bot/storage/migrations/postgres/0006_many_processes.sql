-- runbot schema, version 6 (PostgreSQL): what several bot processes share; see the SQLite file.
CREATE TABLE inbox_chats (
    platform TEXT NOT NULL,
    chat_key TEXT NOT NULL,
    owner TEXT NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (platform, chat_key)
);
CREATE INDEX inbox_chat_pending ON inbox (platform, state, chat_key, update_id);

-- Named single-holder leases: the one process that polls a bot's getUpdates (Telegram allows one consumer).
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL
);

CREATE TABLE flood (
    key TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    warned BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX flood_updated ON flood (updated_at);

CREATE TABLE escalation_repeats (
    key TEXT NOT NULL,
    category TEXT NOT NULL,
    sent_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key, category)
);
CREATE INDEX escalation_repeats_sent ON escalation_repeats (sent_at);

-- One flood-control decision in one round trip, under the row's lock: refill the bucket since its last use, then
-- spend a token (ok), or say "slow down" once (warn), or stay quiet (drop); p_take > 0 spends that many tokens for
-- replies that go out anyway. The same rules as bot/core/ratelimit.py's RateLimiter, on the database's clock.
CREATE FUNCTION runbot_flood_check(p_key TEXT, p_rate DOUBLE PRECISION, p_burst DOUBLE PRECISION, p_take INTEGER)
RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    now_ts TIMESTAMPTZ := clock_timestamp();
    t DOUBLE PRECISION;
    u TIMESTAMPTZ;
    w BOOLEAN;
BEGIN
    INSERT INTO flood (key, tokens, updated_at, warned) VALUES (p_key, p_burst, now_ts, FALSE)
        ON CONFLICT (key) DO NOTHING;
    SELECT tokens, updated_at, warned INTO t, u, w FROM flood WHERE key = p_key FOR UPDATE;
    t := LEAST(p_burst, t + GREATEST(0, EXTRACT(EPOCH FROM now_ts - u)) * p_rate);
    IF p_take > 0 THEN
        UPDATE flood SET tokens = GREATEST(0, t - p_take), updated_at = now_ts WHERE key = p_key;
        RETURN 'ok';
    ELSIF t >= 1 THEN
        UPDATE flood SET tokens = t - 1, updated_at = now_ts, warned = (w AND t - 1 < 1) WHERE key = p_key;
        RETURN 'ok';
    ELSIF w THEN
        UPDATE flood SET tokens = t, updated_at = now_ts WHERE key = p_key;
        RETURN 'drop';
    END IF;
    UPDATE flood SET tokens = t, updated_at = now_ts, warned = TRUE WHERE key = p_key;
    RETURN 'warn';
END
$$;
