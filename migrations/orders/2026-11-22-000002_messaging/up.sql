-- Wake the outbox relay when events are committed (NOTIFY is delivered at
-- commit, once per statement).
CREATE FUNCTION orders.notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orders_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON orders.events
    FOR EACH STATEMENT EXECUTE FUNCTION orders.notify_events();

-- Consumed events (inbox): recorded in the transaction of their effect, so a
-- redelivered event has no second effect.
CREATE TABLE orders.inbox (
    event_id    UUID        PRIMARY KEY,
    event_type  TEXT        NOT NULL,
    consumed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Durable requests to charge an order, written with the order. The dispatcher
-- sends them to payments and retries with back-off until payments answers, so
-- an order with a payment method is never silently left unpaid.
CREATE TABLE orders.payment_requests (
    order_id        UUID        NOT NULL REFERENCES orders.orders (id),
    attempt         INTEGER     NOT NULL CHECK (attempt > 0),
    user_id         TEXT        NOT NULL,
    amount_minor    BIGINT      NOT NULL,
    currency        TEXT        NOT NULL,
    method          TEXT        NOT NULL,
    -- The provider token; cleared once payments has it.
    token           TEXT,
    state           TEXT        NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    tries           INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    traceparent     TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (order_id, attempt)
);
CREATE INDEX payment_requests_due_idx ON orders.payment_requests (next_attempt_at)
    WHERE state = 'pending';
