-- runbot schema, version 4 (PostgreSQL): versioned consent (issue 16); escalations may be linked to nobody.
CREATE TABLE consents (
    user_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    platform TEXT NOT NULL,
    version TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    given_at TIMESTAMPTZ NOT NULL
);
ALTER TABLE escalations ALTER COLUMN user_id DROP NOT NULL;
