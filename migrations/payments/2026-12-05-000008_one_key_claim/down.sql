ALTER TABLE payments.idempotency_keys RENAME COLUMN resource_id TO payment_id;
