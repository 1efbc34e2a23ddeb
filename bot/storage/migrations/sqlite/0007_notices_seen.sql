-- runbot schema, version 7: who has seen the one-time first-message notice, shared by the processes of a bot (used
-- on PostgreSQL; on SQLite one process remembers it in memory and the table stays empty). Only a SHA-256 of
-- platform and user id (never the id itself) and when; rows are deleted after privacy.retention_days. A runner with
-- a row of their own (users.notice_shown) is recorded there as before.
CREATE TABLE notices_seen (
    key TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
CREATE INDEX notices_seen_at ON notices_seen (seen_at);
