-- runbot schema, version 4: explicit, versioned consent before health data is stored (issue 16).
-- One row per user who said "Yes, I agree": which consent text (version and SHA-256 of the text) and when.
-- Withdrawing deletes the row (and the health rows with it); a refusal is never stored.
CREATE TABLE consents (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    platform TEXT NOT NULL,
    version TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    given_at TEXT NOT NULL
);

-- The escalation log may hold rows linked to nobody (user_id NULL): a red flag from someone who has not agreed is
-- logged with level, category and time only. SQLite cannot drop NOT NULL in place, so the table is rebuilt.
CREATE TABLE escalations_v4 (
    id INTEGER PRIMARY KEY,
    user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
    level TEXT NOT NULL,
    category TEXT NOT NULL,
    created_at TEXT NOT NULL
);
INSERT INTO escalations_v4 (id, user_id, level, category, created_at)
    SELECT id, user_id, level, category, created_at FROM escalations;
DROP TABLE escalations;
ALTER TABLE escalations_v4 RENAME TO escalations;
CREATE INDEX escalations_user ON escalations (user_id);
CREATE INDEX escalations_created ON escalations (created_at);
