-- runbot schema, version 6: what several bot processes share. The shared inbox's chat leases and the poller's lease
-- (bot/storage/*/chat_queue.py; IF NOT EXISTS: the queue created them itself before this migration), and flood
-- control and the repeat-escalation guard (shared through the database on PostgreSQL; in memory on SQLite, where
-- the tables stay empty so that both dialects keep one schema).
-- A process holds a chat of the inbox (its pending updates, handled in update order) until lease_until.
CREATE TABLE IF NOT EXISTS inbox_chats (
    platform TEXT NOT NULL,
    chat_key TEXT NOT NULL,
    owner TEXT NOT NULL,
    lease_until TEXT NOT NULL,
    PRIMARY KEY (platform, chat_key)
);
CREATE INDEX IF NOT EXISTS inbox_chat_pending ON inbox (platform, state, chat_key, update_id);

-- Named single-holder leases: the one process that polls a bot's getUpdates (Telegram allows one consumer).
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    lease_until TEXT NOT NULL
);

-- Flood control shared by every process: one token bucket per sender. The key is a SHA-256 of platform and user id
-- (never the id itself); rows of senders quiet for a while are deleted by the housekeeping round.
CREATE TABLE flood (
    key TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated_at TEXT NOT NULL,
    warned INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX flood_updated ON flood (updated_at);

-- The repeat-escalation guard shared by every process: when an escalation of a category last went to a sender.
CREATE TABLE escalation_repeats (
    key TEXT NOT NULL,
    category TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (key, category)
);
CREATE INDEX escalation_repeats_sent ON escalation_repeats (sent_at);
