DELETE FROM orders.idempotency_keys WHERE response_status IS NULL;
ALTER TABLE orders.idempotency_keys
    ALTER COLUMN response_status SET NOT NULL,
    ALTER COLUMN response_body SET NOT NULL;
CREATE TABLE orders.stock_releases (
    reservation_id  UUID        PRIMARY KEY,
    state           TEXT        NOT NULL CHECK (state IN ('pending', 'done')),
    tries           INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE TABLE orders.payment_requests (
    order_id        UUID        NOT NULL REFERENCES orders.orders (id),
    attempt         INTEGER     NOT NULL CHECK (attempt > 0),
    user_id         TEXT        NOT NULL,
    amount_minor    BIGINT      NOT NULL,
    currency        TEXT        NOT NULL,
    method          TEXT        NOT NULL,
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
DROP TABLE orders.jobs;
