ALTER TABLE orders.events
    ALTER COLUMN payload TYPE jsonb USING payload::jsonb,
    ALTER COLUMN snapshot TYPE jsonb USING snapshot::jsonb;
