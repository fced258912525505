ALTER TABLE payments.outbox ADD COLUMN published_at TIMESTAMPTZ;
UPDATE payments.outbox SET published_at = occurred_at
    WHERE position NOT IN (SELECT position FROM payments.unpublished);
CREATE INDEX outbox_unpublished_idx ON payments.outbox (position) WHERE published_at IS NULL;
DROP TABLE payments.unpublished;
