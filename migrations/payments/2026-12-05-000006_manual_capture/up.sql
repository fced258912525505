-- Manual capture: a payment may be authorized now (the amount held on the
-- card) and captured later (at shipment), or voided (the hold released).
ALTER TABLE payments.payments
    ADD COLUMN capture_method TEXT NOT NULL DEFAULT 'automatic'
        CHECK (capture_method IN ('automatic', 'manual')),
    DROP CONSTRAINT payments_status_check,
    ADD CONSTRAINT payments_status_check CHECK (status IN
        ('pending', 'processing', 'authorized', 'voided', 'succeeded', 'failed',
         'partially_refunded', 'refunded'));

-- An authorized payment holds the order's money: it is its live payment.
DROP INDEX payments.payments_one_live_per_order;
CREATE UNIQUE INDEX payments_one_live_per_order
    ON payments.payments (order_id)
    WHERE status IN ('pending', 'processing', 'authorized', 'succeeded', 'partially_refunded');

-- Authorizations waiting for their capture, found by the expiry scan.
CREATE INDEX payments_authorized_idx ON payments.payments (updated_at) WHERE status = 'authorized';

-- The built-in simulated payment provider's memory (the provider's side,
-- not payments' own state): what it charged, held, captured, voided and
-- refunded per payment, so that it survives a restart and is shared by
-- every instance, as a real provider's records are. Reconciliation relies
-- on it. Unused with a real provider.
CREATE TABLE payments.simulated_provider (
    payment_id UUID  PRIMARY KEY,
    record     JSONB NOT NULL
);
