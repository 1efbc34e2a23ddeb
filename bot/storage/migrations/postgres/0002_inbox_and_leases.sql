-- runbot schema, version 2 (PostgreSQL): the durable inbox, follow-up leases and delivered send keys.
CREATE TABLE inbox (
    platform TEXT NOT NULL,
    update_id BIGINT NOT NULL,
    chat_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    received_at TIMESTAMPTZ NOT NULL,
    done_at TIMESTAMPTZ,
    PRIMARY KEY (platform, update_id)
);
CREATE INDEX inbox_pending ON inbox (platform, state, update_id);

ALTER TABLE followups ADD COLUMN lease_owner TEXT;
ALTER TABLE followups ADD COLUMN lease_until TIMESTAMPTZ;
ALTER TABLE followups ADD COLUMN send_key TEXT;
CREATE INDEX followups_lease ON followups (state, lease_until);

CREATE TABLE sent_keys (
    key TEXT PRIMARY KEY,
    sent_at TIMESTAMPTZ NOT NULL
);
