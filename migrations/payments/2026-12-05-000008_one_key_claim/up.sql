-- One Idempotency-Key claim for both services (platform::idempotency::KeyTable):
-- the same columns in both schemas. What a keyed request started (the
-- payment being charged) is its `resource_id`.
ALTER TABLE payments.idempotency_keys RENAME COLUMN payment_id TO resource_id;
