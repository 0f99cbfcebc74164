-- Migration 0 -> 1: the initial schema.
-- Times are integer milliseconds since the epoch.

CREATE TABLE queues (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    fifo            INTEGER NOT NULL,
    attributes      TEXT NOT NULL,              -- JSON object of settable attributes
    tags            TEXT NOT NULL DEFAULT '{}', -- JSON object
    created_at      INTEGER NOT NULL,
    modified_at     INTEGER NOT NULL,
    purged_at       INTEGER,
    next_sequence   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE deleted_queues (
    name        TEXT PRIMARY KEY,
    deleted_at  INTEGER NOT NULL
);

CREATE TABLE messages (
    id                  INTEGER PRIMARY KEY,    -- also the send order
    queue_id            INTEGER NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    message_id          TEXT NOT NULL,
    body                TEXT NOT NULL,
    md5_of_body         TEXT NOT NULL,
    attributes          TEXT,                   -- JSON: message attributes
    system_attributes   TEXT,                   -- JSON: AWSTraceHeader
    sent_at             INTEGER NOT NULL,       -- retention counts from here
    visible_at          INTEGER NOT NULL,       -- receivable when <= now
    receive_count       INTEGER NOT NULL DEFAULT 0,
    first_received_at   INTEGER,
    received_at         INTEGER,                -- the current delivery's start
    receipt_token       BLOB,                   -- the current delivery's secret
    group_id            TEXT,
    deduplication_id    TEXT,
    sequence_number     TEXT,
    dead_letter_source  TEXT                    -- ARN of the queue it was dead-lettered from
);

CREATE INDEX messages_by_visibility ON messages (queue_id, visible_at);
CREATE INDEX messages_by_group ON messages (queue_id, group_id, visible_at)
    WHERE group_id IS NOT NULL;

CREATE TABLE deduplication (
    queue_id        INTEGER NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    dedup_key       TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    sequence_number TEXT,
    expires_at      INTEGER NOT NULL,
    PRIMARY KEY (queue_id, dedup_key)
) WITHOUT ROWID;

CREATE TABLE receive_attempts (
    queue_id    INTEGER NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    attempt_id  TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    deliveries  TEXT NOT NULL,                  -- JSON list of [message row id, token hex]
    PRIMARY KEY (queue_id, attempt_id)
) WITHOUT ROWID;

CREATE TABLE move_tasks (
    task_handle     TEXT PRIMARY KEY,
    source_name     TEXT NOT NULL,
    destination     TEXT,                       -- queue name; NULL = each message's origin
    max_per_second  INTEGER,
    status          TEXT NOT NULL,
    moved           INTEGER NOT NULL DEFAULT 0,
    to_move         INTEGER NOT NULL,
    started_at      INTEGER NOT NULL,
    last_moved_at   INTEGER,
    failure_reason  TEXT,
    last_row        INTEGER NOT NULL         -- the newest message row the task moves
);
CREATE INDEX move_tasks_by_source ON move_tasks (source_name, started_at);
