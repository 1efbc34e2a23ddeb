-- runbot schema, version 3 (PostgreSQL): unanswered questions per asker (user_id; 0 = not linked to anyone).
ALTER TABLE unanswered ADD COLUMN user_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE unanswered DROP CONSTRAINT unanswered_pkey;
ALTER TABLE unanswered ADD PRIMARY KEY (normalized, user_id);
CREATE INDEX unanswered_user ON unanswered (user_id);
