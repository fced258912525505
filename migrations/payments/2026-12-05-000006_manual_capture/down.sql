DROP TABLE payments.simulated_provider;
DROP INDEX payments.payments_authorized_idx;
DROP INDEX payments.payments_one_live_per_order;
CREATE UNIQUE INDEX payments_one_live_per_order
    ON payments.payments (order_id)
    WHERE status IN ('pending', 'processing', 'succeeded', 'partially_refunded');
UPDATE payments.payments SET status = 'failed', failure_reason = 'voided'
    WHERE status IN ('authorized', 'voided');
ALTER TABLE payments.payments
    DROP CONSTRAINT payments_status_check,
    ADD CONSTRAINT payments_status_check CHECK (status IN
        ('pending', 'processing', 'succeeded', 'failed', 'partially_refunded', 'refunded')),
    DROP COLUMN capture_method;
