-- The operators' console (platform::ops).

-- Dead letters, moved here from the dead-letter queue by the service's
-- keeper (committed before the broker copy is acknowledged), so an operator
-- can list, inspect, redrive or discard them. One row per message id: a
-- redriven message that fails again comes back to its row, 'dead' again.
CREATE TABLE payments.dead_letters (
    id                     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue                  TEXT        NOT NULL,
    message_id             TEXT        NOT NULL,
    routing_key            TEXT        NOT NULL,
    content_type           TEXT,
    reason                 TEXT        NOT NULL,
    headers                JSONB       NOT NULL,
    body                   BYTEA       NOT NULL,
    -- The order the message names (its CloudEvent subject), if any.
    subject                TEXT,
    state                  TEXT        NOT NULL DEFAULT 'dead'
        CHECK (state IN ('dead', 'redriven', 'discarded')),
    times_dead_lettered    INTEGER     NOT NULL DEFAULT 1,
    redrives               INTEGER     NOT NULL DEFAULT 0,
    first_dead_lettered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    dead_lettered_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    settled_at             TIMESTAMPTZ,
    CONSTRAINT dead_letters_queue_message_key UNIQUE (queue, message_id)
);
CREATE INDEX dead_letters_open_idx ON payments.dead_letters (id) WHERE state = 'dead';
CREATE INDEX dead_letters_subject_idx ON payments.dead_letters (subject);

-- Every action of an operator: who, what, to what, when; written in the
-- transaction of the change.
CREATE TABLE payments.ops_audit (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operator    TEXT        NOT NULL,
    action      TEXT        NOT NULL,
    target      TEXT        NOT NULL,
    detail      JSONB       NOT NULL,
    traceparent TEXT,
    at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ops_audit_target_idx ON payments.ops_audit (target);

-- An order's story reads the events published about it.
CREATE INDEX outbox_subject_idx ON payments.outbox (subject);
