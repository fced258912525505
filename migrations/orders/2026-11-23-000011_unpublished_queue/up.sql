-- Publishing no longer rewrites the event store: events are written once and
-- never changed.
--
-- The relay used to record each publication by setting `published_at` on the
-- event row: an UPDATE that copied the whole row (payload and snapshot) into
-- a new version, wrote it to the WAL again, and added an entry to every index
-- of the table (the partial index on unpublished rows made every such update
-- a non-HOT one), leaving a dead wide row for vacuum. Measured with
-- pg_stat_statements under the pay flow, that UPDATE was a tenth of the
-- database's time and a fifth of its WAL.
--
-- Now the events waiting to be published are listed in a narrow queue,
-- written in the transaction that appends them; the relay reads the queue in
-- position order, joined to the events, and deletes its entries once the
-- broker has confirmed them.
CREATE TABLE orders.unpublished (
    -- orders.events.position (no foreign key: the writer inserts both in one
    -- transaction, and a check per event would cost an index probe).
    position BIGINT PRIMARY KEY
);
INSERT INTO orders.unpublished (position)
    SELECT position FROM orders.events WHERE published_at IS NULL;
DROP INDEX orders.events_unpublished_idx;
ALTER TABLE orders.events DROP COLUMN published_at;
