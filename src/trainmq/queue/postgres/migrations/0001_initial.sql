-- trainmq queue schema, version 1.  Runs with search_path set to the target schema.
-- Times are integer milliseconds since the epoch.

CREATE TABLE queues (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    fifo            boolean NOT NULL,
    attributes      jsonb NOT NULL,             -- settable attributes, as SQS spells them
    tags            jsonb NOT NULL DEFAULT '{}',
    created_at      bigint NOT NULL,
    modified_at     bigint NOT NULL,
    purged_at       bigint,
    next_sequence   bigint NOT NULL DEFAULT 0
);

CREATE TABLE deleted_queues (
    name        text PRIMARY KEY,
    deleted_at  bigint NOT NULL
);

CREATE TABLE messages (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- also the send order
    queue_id            bigint NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    message_id          text NOT NULL,
    body                text NOT NULL,
    md5_of_body         text NOT NULL,
    attributes          text,                   -- JSON: message attributes
    system_attributes   text,                   -- JSON: AWSTraceHeader
    sent_at             bigint NOT NULL,        -- retention counts from here
    visible_at          bigint NOT NULL,        -- receivable when <= now
    receive_count       integer NOT NULL DEFAULT 0,
    first_received_at   bigint,
    received_at         bigint,                 -- the current delivery's start
    receipt_token       bytea,                  -- the current delivery's secret
    group_id            text,
    deduplication_id    text,
    sequence_number     text,
    dead_letter_source  text                    -- ARN of the queue it was dead-lettered from
);

-- Claims walk a queue's messages in send order and skip what is not visible.
CREATE INDEX messages_in_send_order ON messages (queue_id, id);
-- Counts, the next due message and housekeeping read by visibility time.
CREATE INDEX messages_by_visibility ON messages (queue_id, visible_at);
-- A FIFO group's messages in order.
CREATE INDEX messages_by_group ON messages (queue_id, group_id, id) WHERE group_id IS NOT NULL;

CREATE TABLE deduplication (
    queue_id        bigint NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    dedup_key       text NOT NULL,
    message_id      text NOT NULL,
    sequence_number text,
    expires_at      bigint NOT NULL,
    PRIMARY KEY (queue_id, dedup_key)
);
CREATE INDEX deduplication_by_expiry ON deduplication (queue_id, expires_at);

CREATE TABLE receive_attempts (
    queue_id    bigint NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    attempt_id  text NOT NULL,
    expires_at  bigint NOT NULL,
    deliveries  jsonb NOT NULL,                 -- list of [message row id, token hex]
    PRIMARY KEY (queue_id, attempt_id)
);

CREATE TABLE move_tasks (
    task_handle     text PRIMARY KEY,
    source_name     text NOT NULL,
    destination     text,                       -- queue name; NULL = each message's origin
    max_per_second  integer,
    status          text NOT NULL,
    moved           bigint NOT NULL DEFAULT 0,
    to_move         bigint NOT NULL,
    started_at      bigint NOT NULL,
    last_moved_at   bigint,
    failure_reason  text,
    last_row        bigint NOT NULL,            -- the newest message row the task moves
    created_order   bigint GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX move_tasks_by_source ON move_tasks (source_name, started_at);
