-- runbot schema, version 5: the moderators' in-chat FAQ editing (issue 17).
-- Every change made from the chat: who (platform, platform user id and display name of the moderator, never a
-- runner), when, what (action, file, entry, a one-line summary), and the whole file before and after, so /faq undo
-- restores it byte for byte. An undo is a change too (undoes = the change it reverted; that one's undone_by is set).
CREATE TABLE faq_changes (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    platform TEXT NOT NULL,
    moderator_id TEXT NOT NULL,
    moderator_name TEXT NOT NULL,
    action TEXT NOT NULL,
    file TEXT NOT NULL,
    entry_id TEXT,
    summary TEXT NOT NULL,
    before_bytes BLOB,
    after_bytes BLOB NOT NULL,
    undoes INTEGER REFERENCES faq_changes (id),
    undone_by INTEGER REFERENCES faq_changes (id)
);
CREATE INDEX faq_changes_entry ON faq_changes (entry_id, id);
CREATE INDEX faq_changes_moderator ON faq_changes (platform, moderator_id, id);

-- Unanswered questions a moderator marked "not for the bot" in the review queue: never shown there again.
CREATE TABLE faq_ignored (
    question TEXT PRIMARY KEY,
    at TEXT NOT NULL
);

-- The weekly digest: one row per week that was sent (any process that inserts the row first sends it).
CREATE TABLE digests_sent (
    week TEXT PRIMARY KEY,
    sent_at TEXT NOT NULL
);
