-- runbot schema, version 1. Times are UTC text in the fixed format YYYY-MM-DDTHH:MM:SS.ffffffZ (sortable).
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,
    platform_user_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    notice_shown INTEGER NOT NULL DEFAULT 0,
    followups_enabled INTEGER NOT NULL DEFAULT 1,
    UNIQUE (platform, platform_user_id)
);

CREATE TABLE triage_state (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    flow_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    answers TEXT NOT NULL DEFAULT '[]',
    chat_id TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE escalations (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    level TEXT NOT NULL,
    category TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX escalations_user ON escalations (user_id);
CREATE INDEX escalations_created ON escalations (created_at);

-- No user id here on purpose: moderators see what is asked, not who asked it.
CREATE TABLE unanswered (
    normalized TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX unanswered_last_seen ON unanswered (last_seen);

CREATE TABLE followups (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    due_at TEXT NOT NULL,
    checkins INTEGER NOT NULL DEFAULT 0,
    same_count INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    -- pending: waiting for due_at; sending: a send started (resent after a crash); awaiting: check-in sent,
    -- waiting for the answer; done, cancelled, failed, dropped: finished.
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_error TEXT
);
CREATE INDEX followups_state_due ON followups (state, due_at);
CREATE INDEX followups_user ON followups (user_id);

-- Daily counters for reports: counts only, no user ids.
CREATE TABLE stats (
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (day, kind)
);
