-- The payments service's schema. Everything lives in schema `payments`.

CREATE TABLE payments.payments (
    id                 UUID        PRIMARY KEY,
    order_id           UUID        NOT NULL,
    user_id            TEXT        NOT NULL,
    amount_minor       BIGINT      NOT NULL CHECK (amount_minor > 0),
    currency           TEXT        NOT NULL CHECK (char_length(currency) = 3),
    method             TEXT        NOT NULL,
    status             TEXT        NOT NULL
        CHECK (status IN ('pending', 'processing', 'succeeded', 'failed', 'refunded')),
    failure_reason     TEXT,
    provider_reference TEXT,
    refund_reference   TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);

-- An order is charged at most once: at most one payment per order may be in
-- flight or succeeded. A failed payment leaves room for another attempt.
CREATE UNIQUE INDEX payments_one_live_per_order
    ON payments.payments (order_id) WHERE status IN ('pending', 'processing', 'succeeded', 'refunded');
CREATE INDEX payments_user_created_idx ON payments.payments (user_id, created_at DESC);
CREATE INDEX payments_order_idx ON payments.payments (order_id, created_at DESC);

-- Idempotency-Key records: the first request's fingerprint and, once done,
-- its response, stored in the transaction that finishes the work.
CREATE TABLE payments.idempotency_keys (
    owner          TEXT        NOT NULL,
    key            TEXT        NOT NULL,
    request_hash   TEXT        NOT NULL,
    payment_id     UUID,
    response_status SMALLINT,
    response_body  BYTEA,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_created_idx ON payments.idempotency_keys (created_at);

-- The transactional outbox: payment events committed with the change.
CREATE TABLE payments.outbox (
    position     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           UUID        NOT NULL UNIQUE,
    -- The order the payment is for: the CloudEvents subject.
    subject      TEXT        NOT NULL,
    event_type   TEXT        NOT NULL,
    data         JSONB       NOT NULL,
    traceparent  TEXT,
    occurred_at  TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished_idx ON payments.outbox (position) WHERE published_at IS NULL;

CREATE FUNCTION payments.notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('payments_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON payments.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION payments.notify_outbox();

-- Consumed events (inbox): a redelivered event finds its id here and has no
-- second effect.
CREATE TABLE payments.inbox (
    event_id    UUID        PRIMARY KEY,
    event_type  TEXT        NOT NULL,
    consumed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Orders known to be cancelled: a charge that completes after the
-- cancellation arrived is refunded at once.
CREATE TABLE payments.cancelled_orders (
    order_id     UUID        PRIMARY KEY,
    cancelled_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
