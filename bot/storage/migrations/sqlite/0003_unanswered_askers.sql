-- runbot schema, version 3: unanswered questions are kept per asker (user_id; 0 = not linked to anyone, e.g. rows
-- from version 1 or the CLI), so /mydata lists a runner's own questions and /forget removes them. The text is
-- stored masked (names, @handles, emails, links and numbers replaced) since this version.
CREATE TABLE unanswered_v2 (
    normalized TEXT NOT NULL,
    user_id INTEGER NOT NULL DEFAULT 0,
    count INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (normalized, user_id)
);
INSERT INTO unanswered_v2 (normalized, user_id, count, first_seen, last_seen)
    SELECT normalized, 0, count, first_seen, last_seen FROM unanswered;
DROP TABLE unanswered;
ALTER TABLE unanswered_v2 RENAME TO unanswered;
CREATE INDEX unanswered_last_seen ON unanswered (last_seen);
CREATE INDEX unanswered_user ON unanswered (user_id);
