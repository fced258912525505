-- One encoding per event: the payload and the published snapshot are stored
-- as the JSON text the service wrote (`json`: checked, kept as written),
-- not converted to `jsonb`'s binary form that nothing here queries into.
-- The relay publishes the snapshot's text as it is; replay parses the
-- payload once.
ALTER TABLE orders.events
    ALTER COLUMN payload TYPE json USING payload::json,
    ALTER COLUMN snapshot TYPE json USING snapshot::json;
