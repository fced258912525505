-- Publishing no longer rewrites outbox rows (as in orders' migration
-- 000011): the rows waiting to be published are listed in a narrow queue,
-- written in the statement that appends them, and the relay deletes their
-- entries once the broker has confirmed them. An outbox row is written once;
-- retention prunes old rows that are no longer queued.
CREATE TABLE payments.unpublished (
    -- payments.outbox.position
    position BIGINT PRIMARY KEY
);
INSERT INTO payments.unpublished (position)
    SELECT position FROM payments.outbox WHERE published_at IS NULL;
DROP INDEX payments.outbox_unpublished_idx;
ALTER TABLE payments.outbox DROP COLUMN published_at;
