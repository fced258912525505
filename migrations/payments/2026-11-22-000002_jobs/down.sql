DROP INDEX payments.payments_one_live_per_order;
CREATE UNIQUE INDEX payments_one_live_per_order
    ON payments.payments (order_id) WHERE status IN ('pending', 'processing', 'succeeded', 'refunded');
DROP INDEX payments.payments_processing_idx;
DROP TABLE payments.jobs;
