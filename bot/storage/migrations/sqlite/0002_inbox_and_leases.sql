-- Durable inbox: an incoming platform update is written here before it is confirmed to the platform, and marked
-- done once its replies were handed over; pending rows are replayed at start. A done row keeps only the update id
-- (the payload is cleared) so a re-delivered update is recognised; done rows are purged after two days.
CREATE TABLE inbox (
    platform TEXT NOT NULL,
    update_id INTEGER NOT NULL,
    chat_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',  -- pending | done
    received_at TEXT NOT NULL,
    done_at TEXT,
    PRIMARY KEY (platform, update_id)
);
CREATE INDEX inbox_pending ON inbox (platform, state, update_id);

-- Follow-up claims: a process claims due rows with one conditional UPDATE (lease owner + expiry); a row in
-- 'sending' is taken over only after its lease expired. send_key names one check-in send (idempotency key).
ALTER TABLE followups ADD COLUMN lease_owner TEXT;
ALTER TABLE followups ADD COLUMN lease_until TEXT;
ALTER TABLE followups ADD COLUMN send_key TEXT;
CREATE INDEX followups_lease ON followups (state, lease_until);

-- Idempotency keys of check-ins that were delivered: a key found here is never sent again.
CREATE TABLE sent_keys (
    key TEXT PRIMARY KEY,
    sent_at TEXT NOT NULL
);
