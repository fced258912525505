-- One Idempotency-Key claim for both services (platform::idempotency::KeyTable):
-- the same columns in both schemas. `resource_id` is what a keyed request
-- started, for a retry that takes an abandoned key over (orders' keyed
-- requests commit in one transaction, so it stays empty here).
ALTER TABLE orders.idempotency_keys ADD COLUMN resource_id UUID;
