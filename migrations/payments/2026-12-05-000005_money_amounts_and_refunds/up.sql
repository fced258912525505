-- A payment has amounts, not just a status: what was captured (taken), what
-- was refunded, and what accepted refunds still in progress will refund.
-- The database itself refuses giving back more than was taken: two
-- concurrent refunds both reserve by compare-and-set under this CHECK, so at
-- most one of two that together exceed the captured amount commits.
ALTER TABLE payments.payments
    ADD COLUMN captured_minor       BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN refunded_minor       BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN refund_pending_minor BIGINT NOT NULL DEFAULT 0;

UPDATE payments.payments SET captured_minor = amount_minor
    WHERE status IN ('succeeded', 'refunded');
UPDATE payments.payments SET refunded_minor = amount_minor
    WHERE status = 'refunded';

ALTER TABLE payments.payments
    ADD CONSTRAINT payments_amounts_bounded CHECK (
        captured_minor BETWEEN 0 AND amount_minor
        AND refunded_minor >= 0
        AND refund_pending_minor >= 0
        AND refunded_minor + refund_pending_minor <= captured_minor
    ),
    DROP CONSTRAINT payments_status_check,
    ADD CONSTRAINT payments_status_check CHECK (status IN
        ('pending', 'processing', 'succeeded', 'failed', 'partially_refunded', 'refunded'));

-- A partially refunded charge still pays its order: it stays the order's
-- one live payment.
DROP INDEX payments.payments_one_live_per_order;
CREATE UNIQUE INDEX payments_one_live_per_order
    ON payments.payments (order_id)
    WHERE status IN ('pending', 'processing', 'succeeded', 'partially_refunded');

-- Refunds are resources: each with its own id, amount and state, done once
-- by a durable job keyed by its id.
CREATE TABLE payments.refunds (
    id                 UUID        PRIMARY KEY,
    payment_id         UUID        NOT NULL REFERENCES payments.payments (id),
    amount_minor       BIGINT      NOT NULL CHECK (amount_minor > 0),
    currency           TEXT        NOT NULL CHECK (char_length(currency) = 3),
    status             TEXT        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    reason             TEXT        NOT NULL,
    -- The order lines it is for: [{"item_id", "quantity"}], possibly empty.
    items              JSONB       NOT NULL DEFAULT '[]',
    requested_by       TEXT        NOT NULL,
    provider_reference TEXT,
    failure_reason     TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX refunds_payment_idx ON payments.refunds (payment_id, created_at);

-- Refunds made before refunds were resources become rows of their own, so
-- a payment's refunds always add up to what it says was refunded.
INSERT INTO payments.refunds (id, payment_id, amount_minor, currency, status, reason,
                              requested_by, provider_reference, created_at, updated_at)
SELECT id, id, amount_minor, currency, 'succeeded', 'requested', 'svc-payments',
       refund_reference, updated_at, updated_at
FROM payments.payments WHERE status = 'refunded';
