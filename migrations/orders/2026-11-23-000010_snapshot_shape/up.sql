-- The shape of each event's `snapshot` (the order's public representation,
-- `view::SHAPE` of the code that wrote it). `GET /api/v1/orders/{id}` answers
-- with the latest event's snapshot as it is stored when its shape is the one
-- the running code writes, and renders the order afresh otherwise, so a
-- change to the representation never serves an old one.
--
-- Rows written before this migration are shape 0: some were converted from
-- jsonb (whose text has other key order and spacing), so they are always
-- rendered afresh. New rows must name their shape: no default.
ALTER TABLE orders.events ADD COLUMN snapshot_shape SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE orders.events ALTER COLUMN snapshot_shape DROP DEFAULT;
