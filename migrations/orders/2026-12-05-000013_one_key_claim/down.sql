ALTER TABLE orders.idempotency_keys DROP COLUMN resource_id;
