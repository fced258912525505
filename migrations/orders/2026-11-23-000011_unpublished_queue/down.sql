ALTER TABLE orders.events ADD COLUMN published_at TIMESTAMPTZ;
UPDATE orders.events SET published_at = occurred_at
    WHERE position NOT IN (SELECT position FROM orders.unpublished);
CREATE INDEX events_unpublished_idx ON orders.events (position) WHERE published_at IS NULL;
DROP TABLE orders.unpublished;
