DROP TABLE payments.refunds;
DROP INDEX payments.payments_one_live_per_order;
CREATE UNIQUE INDEX payments_one_live_per_order
    ON payments.payments (order_id) WHERE status IN ('pending', 'processing', 'succeeded');
UPDATE payments.payments SET status = 'succeeded' WHERE status = 'partially_refunded';
ALTER TABLE payments.payments
    DROP CONSTRAINT payments_status_check,
    ADD CONSTRAINT payments_status_check CHECK (status IN
        ('pending', 'processing', 'succeeded', 'failed', 'refunded')),
    DROP CONSTRAINT payments_amounts_bounded,
    DROP COLUMN captured_minor,
    DROP COLUMN refunded_minor,
    DROP COLUMN refund_pending_minor;
