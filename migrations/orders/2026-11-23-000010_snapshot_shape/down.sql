ALTER TABLE orders.events DROP COLUMN snapshot_shape;
